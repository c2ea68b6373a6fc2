"""Which head answers an X-ray, at serving: P(adult), the children's and the
adult heads, hard routing or a blend (fitted by `pneumonia.train.population`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pneumonia import calibration

POPULATION_FILE = "population.npz"
# The adult reader (rules.ADULT_RULE): its own network (pneumonia.train.reader_serving)
# and this last layer with its can't-tell band.
READER_FILE = "reader.npz"
# details["answered_by"]: one scheme, a head named by who it was fitted for.
ANSWERED_BY = {"children": "children's head", "adult": "adult head", "blend": "both heads, blended",
               "reader": "adult reader", "reader_blend": "children's model and adult reader, blended"}
# Below this adult share a blend is the children's answer alone (it would move
# P(PNEUMONIA) by under 0.001), so a child's answer never waits for the reader.
MIN_SHARE = 1e-3


@dataclass
class LinearHead:
    """logit = pooled . w + b; probability = sigmoid(logit / temperature)."""
    w: np.ndarray
    b: float
    temperature: float = 1.0
    threshold: float = 0.5

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        return np.atleast_2d(np.asarray(pooled, np.float64)) @ self.w + self.b

    def probability(self, pooled: np.ndarray) -> np.ndarray:
        return calibration.sigmoid(self.logits(pooled) / self.temperature)


@dataclass
class Population:
    gate: LinearHead      # probability: P(adult); above its threshold, an adult
    adult: LinearHead     # the adult head, with its own temperature and threshold
    blend: bool = False   # answers: one head by the threshold (False), or both weighted by P(adult)

    def adult_probability(self, pooled: np.ndarray) -> np.ndarray:
        return self.gate.probability(pooled)

    def looks_adult(self, p_adult: np.ndarray) -> np.ndarray:
        return np.asarray(p_adult) > self.gate.threshold

    def save(self, path: str | Path) -> None:
        np.savez(path, blend=self.blend, **{f"{name}_{k}": v for name, head in (("gate", self.gate), ("adult", self.adult))
                                            for k, v in asdict(head).items()})

    @classmethod
    def load(cls, path: str | Path) -> "Population":
        with np.load(path) as f:
            def head(name):
                return LinearHead(f[f"{name}_w"].astype(np.float64), float(f[f"{name}_b"]),
                                  float(f[f"{name}_temperature"]), float(f[f"{name}_threshold"]))
            return cls(head("gate"), head("adult"), bool(f["blend"]) if "blend" in f else False)


@dataclass
class AdultReader:
    """The adult reader's last layer on its own network's pooled features, and
    its can't-tell band: an answer with low <= P(PNEUMONIA) < high is UNCERTAIN."""
    head: LinearHead
    low: float
    high: float

    def uncertain(self, p: float) -> bool:
        return self.low <= p < self.high

    def save(self, path: str | Path) -> None:
        np.savez(path, low=self.low, high=self.high, **asdict(self.head))

    @classmethod
    def load(cls, path: str | Path) -> "AdultReader":
        with np.load(path) as f:
            return cls(LinearHead(f["w"].astype(np.float64), float(f["b"]), float(f["temperature"]),
                                  float(f["threshold"])), float(f["low"]), float(f["high"]))


def reader_share(population: Population, p_adult: np.ndarray) -> np.ndarray:
    """The adult reader's weight in each answer: hard routing 0 or 1 by the
    gate's threshold; a blend P(adult), none below MIN_SHARE."""
    p_adult = np.asarray(p_adult, np.float64)
    if population.blend:
        return np.where(p_adult >= MIN_SHARE, p_adult, 0.0)
    return population.looks_adult(p_adult).astype(np.float64)


def answer(pooled: np.ndarray, pediatric: LinearHead, population: Population | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the app answers for a batch of pooled features: (P(PNEUMONIA),
    each answer's threshold, the adult head's share in it (0 = the children's
    model alone, 1 = the adult head alone), the head's weights per image (n,
    C) for Grad-CAM). A blend weighs probabilities, thresholds and Grad-CAM
    weights alike by P(adult)."""
    pooled = np.atleast_2d(pooled)
    p = pediatric.probability(pooled)
    if population is None:
        share = np.zeros(len(pooled))
    else:
        p_adult = population.adult_probability(pooled)
        share = p_adult if population.blend else population.looks_adult(p_adult).astype(np.float64)
        p = (1 - share) * p + share * population.adult.probability(pooled)
    adult = population.adult if population is not None else pediatric
    thresholds = (1 - share) * pediatric.threshold + share * adult.threshold
    weights = (1 - share)[:, None] * pediatric.w[None] + share[:, None] * adult.w[None]
    return p, thresholds, share, weights
