"""What the 2D families (dcgan2d, stylegan2d) share: training slices, mosaics, and network output to physical pixels.

Not a family itself; families may import it, and it imports no family.
"""
