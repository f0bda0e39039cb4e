"""DP-FCN: dual-path fully convolutional network for landslide inventory mapping."""
