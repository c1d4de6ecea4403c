"""``builtin:photos``: the nine real photos that ship inside scikit-image, scikit-learn and
matplotlib, resolved from the installed packages (never copied)."""

from __future__ import annotations

from pathlib import Path

from biasprobe.core.errors import InputError

__all__ = ["BUILTIN_PHOTOS", "PHOTO_WNIDS", "bundled_photo_paths"]

BUILTIN_PHOTOS = "builtin:photos"

PHOTO_WNIDS: dict[str, str] = {
    "coffee": "n07920052",  # espresso
    "chelsea": "n02123045",  # tabby (an orange tabby cat; tiger cat and Egyptian cat are its neighbours)
    "rocket": "n03773504",  # missile (a rocket on its launch pad)
    "motorcycle_left": "n03785016",  # moped (ImageNet-1k has no motorcycle class; moped is the nearest)
    "motorcycle_right": "n03785016",  # moped
    "china": "n03877845",  # palace (a Chinese palace hall)
    "grace_hopper": "n03763968",  # military uniform
}
"""Hand-assigned ImageNet-1k classes (wnids) of the bundled photos that show one: seven of the
nine (astronaut and flower show none). ``builtin:photos`` itself stays unlabelled; the demo
writes a manifest with these labels for its model comparison."""


def bundled_photo_paths() -> dict[str, Path]:
    """The nine real photos inside the installed scikit-image, scikit-learn and matplotlib."""
    import matplotlib
    import skimage.data
    import sklearn.datasets

    skimage_dir = Path(skimage.data.__file__).parent
    sklearn_dir = Path(sklearn.datasets.__file__).parent / "images"
    mpl_dir = Path(matplotlib.get_data_path()) / "sample_data"
    paths = {
        "astronaut": skimage_dir / "astronaut.png",
        "chelsea": skimage_dir / "chelsea.png",
        "coffee": skimage_dir / "coffee.png",
        "rocket": skimage_dir / "rocket.jpg",
        "motorcycle_left": skimage_dir / "motorcycle_left.png",
        "motorcycle_right": skimage_dir / "motorcycle_right.png",
        "china": sklearn_dir / "china.jpg",
        "flower": sklearn_dir / "flower.jpg",
        "grace_hopper": mpl_dir / "grace_hopper.jpg",
    }
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise InputError(f"bundled photos missing from the installed packages: {', '.join(missing)}")
    return paths
