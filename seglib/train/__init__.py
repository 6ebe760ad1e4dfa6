"""Training stages over trl, each generic over ``seglib.paradigms.base.Paradigm``.

``sft`` (SFT on ``Paradigm.sft_examples``; ``sft_eval`` its val metrics; ``dense`` the
tiny policy's dense auxiliary loss), ``pretrain_vision`` (dense vision pre-training of
the tiny policy), ``grpo`` (GRPO/GSPO; ``rest`` REST), ``rl_stage`` (notebook 04's run
over ``Paradigm.rl_rows`` / ``score_group``), ``star`` (StaR+), ``common`` (rows, logs,
checkpoints), ``settings`` (the builders from flat parameters), ``launch``
(``accelerate launch``, the disk estimate), ``run_folder`` and ``__main__`` (the command line).
"""
from seglib.train.launch import check_checkpoint_space  # noqa: F401  (re-exported: the trainers' disk check)
