"""Generic training machinery every model family uses: the request and its dispatch (finetune), the step loop,
checkpoints with named state dicts, the loss log, several processes (distributed), mosaics and MS-SSIM diversity."""
