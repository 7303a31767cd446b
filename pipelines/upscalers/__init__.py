"""Upscalers: Pillow resizes, spandrel model files (ESRGAN, SwinIR, HAT, DAT, ...) and the SD x4 upscaler."""
