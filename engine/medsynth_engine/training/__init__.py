"""Training pgan3d: the fine-tune loop, checkpoints, augmentation, distributed training, logs and mosaics."""
