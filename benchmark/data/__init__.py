"""Data: the Video model, image decoding, the decoded-frame cache, CDnet codes and the dataset formats."""
