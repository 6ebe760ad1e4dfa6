"""Training stages over trl: SFT (``sft``), dense vision pre-training of the tiny policy
(``pretrain_vision``), GRPO/GSPO/REST (``grpo``) and StaR+ (``star``)."""
