"""How dense each lung is: opacity measured on the film, beside what the classifier learnt.

A lung full of fluid or consolidation is as dense as the soft tissue between
the lungs, whatever the hospital; an aerated lung is far darker. The density
of a lung is where its median grey sits between the film's darkest lung grey
D (the 5th percentile of both lungs) and the mediastinum's grey M: about 0.3
aerated, about 1 as dense as the mediastinum. Being a ratio of greys of one
film, it does not move with the film's contrast or brightness.

`OpacityRule` (rules.WHITE_RULE 8, fitted by `pneumonia.train.opacity_rule`):
a film whose denser lung reaches the threshold gets at least the probability
of disease that real validation films that dense had.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

# Image sides, as a user reads the film: the image's left lung is the patient's right.
SIDES = ("image left", "image right")


def lungs_of(mask: np.ndarray) -> list[np.ndarray]:
    """The mask's two largest components (bool), left to right in the image."""
    n, labels, stats, cent = cv2.connectedComponentsWithStats(np.uint8(mask > 0), connectivity=8)
    order = 1 + np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2]
    order = sorted(order, key=lambda c: cent[c][0])
    return [labels == c for c in order]


def mediastinum_grey(image: np.ndarray, mask: np.ndarray, lungs: list[np.ndarray] | None = None) -> float:
    """The grey of the strip between the lungs (the whitest soft tissue a
    consolidated lung reaches); the image's 85th percentile if there is none.
    `lungs`: `lungs_of(mask)` where the caller has it."""
    lungs = lungs_of(mask) if lungs is None else lungs
    if len(lungs) == 2:
        right_edge = np.flatnonzero(lungs[0].any(0)).max()
        left_edge = np.flatnonzero(lungs[1].any(0)).min()
        rows = np.flatnonzero(mask.any(1))
        if left_edge - right_edge > 4 and len(rows):
            strip = image[rows.min():rows.max() + 1, right_edge + 1:left_edge]
            return float(np.percentile(strip, 60))
    return float(np.percentile(image, 85))


def lung_density(image: np.ndarray, mask: np.ndarray) -> list[float]:
    """Each lung's density (left to right in the image) on a canonical (224, 224)
    uint8 film and its lung mask; empty without lungs."""
    lungs = lungs_of(mask)
    if not lungs:
        return []
    dark = float(np.percentile(image[mask > 0], 5))
    span = max(mediastinum_grey(image, mask, lungs) - dark, 1.0)
    return [round((float(np.median(image[lung])) - dark) / span, 4) for lung in lungs]


def opaque_map(mask: np.ndarray, side: str, region: tuple[int, int, int, int], cells: int) -> np.ndarray:
    """The opaque lung as the answer's map: (cells, cells) over the box the
    classifier read, each cell the share of it inside that lung."""
    x0, y0, x1, y1 = region
    lung = lungs_of(mask)[SIDES.index(side)][y0:y1, x0:x1].astype(np.float32)
    return cv2.resize(lung, (cells, cells), interpolation=cv2.INTER_AREA)


@dataclass
class OpacityRule:
    """Density >= threshold in either lung: P(PNEUMONIA) at least `probability`
    ((k + 1) / (n + 2) of the n validation films that dense, k with the disease)."""
    threshold: float
    probability: float
    n: int = 0
    k: int = 0

    def judge(self, densities: list[float]) -> dict:
        """What the rule says of one film's lung densities (plain values for the answer)."""
        dense = max(densities) if densities else None
        fires = dense is not None and dense >= self.threshold
        return {"densities": [float(d) for d in densities], "threshold": self.threshold, "opaque": bool(fires),
                "side": SIDES[int(np.argmax(densities))] if fires else None,
                "probability": self.probability if fires else None}

    def as_dict(self) -> dict:
        return asdict(self)
