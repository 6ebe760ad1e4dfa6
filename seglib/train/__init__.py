"""Training stages over trl: SFT (``sft``), dense vision pre-training of the tiny policy
(``pretrain_vision``), GRPO/GSPO/REST (``grpo``) and StaR+ (``star``)."""


def check_checkpoint_space(model, output_dir, keep: int | None) -> None:
    """Before training: stop cleanly if ``output_dir``'s disk cannot hold the checkpoints.

    Estimate per checkpoint: the weights plus two fp32 Adam moments of the trainable
    parameters; ``keep`` kept checkpoints (all when None, counted as 3) plus the final model.
    """
    from seglib.runs import check_free_space

    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    moments = sum(p.numel() * 8 for p in model.parameters() if p.requires_grad)
    check_free_space(output_dir, (weights + moments) * (keep or 3) + weights)
