"""clothparse: the reproducible companion of 'Clothing Parsing using Extended U-Net' (VISAPP 2021)."""
__version__ = "0.1.0"
