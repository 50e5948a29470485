"""Run by test_trainer.py, alone or under torchrun: the toy task, global batch 8 (argv: RUN_DIR [MAX_STEPS])."""
import sys

from accelerate import Accelerator

from toy_task import ToyTask
from wavegrad.training.trainer import TrainConfig, Trainer

if __name__ == "__main__":
    cfg = TrainConfig(run_dir=sys.argv[1], max_steps=int(sys.argv[2]) if len(sys.argv) > 2 else 3, batch_size=8, lr=1e-2, num_workers=0, log_every=0,
                      val_every=0, ckpt_every=0, cpu=True)
    Trainer(ToyTask(), cfg, accelerator=Accelerator(cpu=True)).fit()
