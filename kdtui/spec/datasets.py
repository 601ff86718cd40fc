"""What the spec knows of the datasets without reading them: the built-in sets' sizes, which
datasets hold images, and the expected layout of the user's own files, said in every message
about a bad file (by validation and by the engine's loaders alike)."""

from __future__ import annotations

# Series lengths and image sides of the built-in datasets, for checking sizes without
# loading data.
KNOWN_LENGTHS = {"basicmotions": 100}
KNOWN_CHANNELS = {"basicmotions": 6, "synthetic-har": 3}
KNOWN_IMAGE_SIDES = {"cifar10": 32}

#: Datasets of images (read by 2-D models through the "image" view), not of signals.
IMAGE_DATASETS = ("cifar10", "image-folder")
CIFAR10_LAYOUT = (
    "expected the CIFAR-10 python version: a folder (e.g. cifar-10-batches-py) holding "
    "data_batch_1 ... data_batch_5 and test_batch, pickled dicts with b'data' (N, 3072) uint8 "
    "and b'labels'; kdtui never downloads it"
)
IMAGE_FOLDER_LAYOUT = (
    "expected class-per-folder images: <path>/train/<class>/*.png|jpg and the same under "
    "<path>/test/ (or val/, valid/), as in CINIC-10; Tiny-ImageNet's val/ must first be sorted "
    "into class folders (val_annotations.txt)"
)
