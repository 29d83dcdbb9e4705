"""datasets.MNIST: 28x28 uint8 digits drawn as one bright bar per class (row band 2k+4)
plus noise; the sizes come from the environment (GRADJIT_FAKE_MNIST="train,test");
FashionMNIST is the same synthetic set.
datasets.FakeData: uniform random uint8 images (HxWxC arrays where torchvision gives PIL
images; ToTensor reads both the same) and random class labels, seeded by the index."""
import os

import numpy as np


class MNIST:
    def __init__(self, root, train=True, download=False, transform=None,
                 target_transform=None):
        sizes = [int(v) for v in os.environ.get("GRADJIT_FAKE_MNIST", "256,64").split(",")]
        n = sizes[0] if train else sizes[1]
        rng = np.random.default_rng(0 if train else 1)
        self.targets = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, k in enumerate(self.targets):
            images[i, 2 * k + 4:2 * k + 6, 4:24] = 255
        self.data = images.astype(np.uint8)
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        image, target = self.data[i], int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class FashionMNIST(MNIST):
    pass


class FakeData:
    def __init__(self, size=1000, image_size=(3, 224, 224), num_classes=10, transform=None,
                 target_transform=None, random_offset=0):
        self.size, self.image_size, self.num_classes = size, tuple(image_size), num_classes
        self.transform, self.target_transform = transform, target_transform
        self.random_offset = random_offset

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        if not 0 <= i < self.size:
            raise IndexError(f"{type(self).__name__} index out of range")
        rng = np.random.default_rng(i + self.random_offset)
        c, h, w = self.image_size
        image = rng.integers(0, 256, (h, w, c)).astype(np.uint8)
        target = int(rng.integers(0, self.num_classes))
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target
