"""Small-cell suppression that holds across every payload of a generation.

Why one pass over everything: the same count (say, people with an HDL value among women 40-44 in
Busan) is published by several payloads, and payloads add up to each other (all = M + F, a
province total = the sum of its bands, people = positive + negative + unknown...). Suppressing each
payload on its own lets an attacker difference them. So every count that any payload publishes is
a cell of one *family*, and one pass protects all families of a year together.

Model (numpy only; no pandas):

* ``people``: the cube sex x age band x province, each axis with its total at index 0
  (``(3, bands + 1, provinces + 1)``).
* a :class:`Family` partitions people by one rule: its cube is ``(sex, age, province, *values)``,
  every axis again with its total at index 0, and the all-values slice ``x[:, :, :, 0, ...]`` is
  ``people`` (families published without a province axis hold only the province total, so their
  third axis has length 1). The value space is 1-D (a measurement: measured / missing) or 2-D (in
  the complete panel yes / no x the rule's values and "unknown"). Every cell counts as published,
  including cells no payload prints but a reader can derive by subtraction (people outside the
  complete panel with a positive flag, say): they are protected like printed ones.
* Relations: every line of every cube along one axis (a total and its parts), and the shared
  ``people`` cells.

Rule: no count from 1 to k-1 can be recovered from any combination of published numbers by
differencing the additive relations. Method, after the hypercube method (Repsilber's GHMITER; see
Hundepool A et al., *Statistical Disclosure Control*, Wiley 2012, doi:10.1002/9781118348239, ch. 4):

1. Primary: every count in [1, k-1] is withheld; 0 is published.
2. Every primary cell not yet protected gets an *invisible perturbation*: a change of cells that
   keeps every relation, so the published numbers cannot tell it from the truth. It is the product
   of a 2^d hypercube over sex x age x province (on each axis the cell's index and a partner:
   another part, signs opposite, or the axis total, same sign) and a *move* in value space that
   leaves people unchanged (one person moved from one value cell to another, with the margins that
   changes, or a 2 x 2 rectangle). All its cells are withheld. The perturbation must be able to run
   by one person at least one way: every cell it decreases is positive (cells it increases may be
   0, then a withheld 0). So the primary cell takes at least two values consistent with everything
   published, as integers and with every count non-negative: neither a rank audit nor an interval
   (linear-programming) audit pins it.
3. A small *people* cell gets a hypercube over sex x age x province and, in every family, a
   carrier (one value cell with its margins) moved with it, so every family stays consistent.
4. Candidates are cheap first (a vectorised pass with fixed partners: the other sex, neighbouring
   bands, provinces of similar size, the most common value moves); an adaptive search over the
   positive cells along each line runs where those fail or would withhold national totals. Cost =
   the printed counts newly withheld, weighted (``Family.weight``: 0 for cells never printed, more
   for headline numbers), so totals and prevalences are the last complements chosen. A cell of an
   accepted perturbation is protected too, so most small cells ride on a neighbour's.

Numbers computed from counts (percents, rates, intervals) are the payload builders' concern: they
print one only where it does not depend on withheld counts at its printed precision
(:mod:`shared.stats.rates`), so it adds nothing to what the counts reveal.

docs/STATISTICS.md explains the method; tests/unit/test_stats_disclosure.py attacks the result.
"""

from __future__ import annotations

import hashlib
import itertools
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from shared.stats.mask_memo import MaskMemo

_CANDIDATES = 3  # adaptive search: partners tried per axis (smallest and largest), besides the total
_FAST_MOVES = 3  # vectorised pass: value moves tried per cell
_SLOW_MOVES = 12  # adaptive search: value moves tried per cell
_CHUNK = 256  # primaries evaluated per vectorised batch
_PEOPLE_BATCH = 24  # candidate people cubes whose carriers are evaluated together


@dataclass
class Family:
    """One rule's cube (see the module docstring); ``sup`` is filled by :func:`protect`."""

    name: str
    x: np.ndarray
    # what withholding a cell costs per person: 0 for cells no payload prints (derivable ones), 1 for
    # printed ones, more for headline numbers (a prevalence's positives and denominator)
    weight: np.ndarray | None = None
    sup: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.x = np.ascontiguousarray(self.x, dtype=np.int64)
        if self.x.ndim < 4:
            raise ValueError(f"{self.name}: a family needs at least one value axis")
        if self.weight is None:
            self.weight = np.ones(self.x.shape, dtype=np.float64)
        self.weight = np.ascontiguousarray(self.weight, dtype=np.float64)
        self.sup = np.zeros(self.x.shape, dtype=bool)

    @property
    def value_axes(self) -> int:
        return self.x.ndim - 3

    @property
    def by_province(self) -> bool:
        return self.x.shape[2] > 1


def with_totals(base: np.ndarray) -> np.ndarray:
    """Add a total at index 0 of every axis (the sum of the other members)."""
    ext = np.zeros(tuple(d + 1 for d in base.shape), dtype=np.int64)
    ext[(slice(1, None),) * base.ndim] = base
    for axis in range(base.ndim):
        index = [slice(None)] * base.ndim
        index[axis] = 0
        rest = list(index)
        rest[axis] = slice(1, None)
        ext[tuple(index)] = ext[tuple(rest)].sum(axis=axis)
    return ext


def small(x: np.ndarray, k: int) -> np.ndarray:
    return (x >= 1) & (x < k)


class _ValueSpace:
    """The moves of one family's value space (flat indices; index 0 is the people cell)."""

    def __init__(self, shape: tuple[int, ...], national: np.ndarray) -> None:
        self.shape = shape
        size = int(np.prod(shape))
        interior = [tuple(i + 1 for i in cell) for cell in np.ndindex(*(d - 1 for d in shape))]
        self.interior = np.array([np.ravel_multi_index(c, shape) for c in interior], dtype=np.int64)
        vectors = []

        def add(vec: np.ndarray, cell: tuple[int, ...], sign: int) -> None:
            for keep in itertools.product((0, 1), repeat=len(shape)):
                vec[tuple(c if k else 0 for c, k in zip(cell, keep, strict=True))] += sign

        for u, v in itertools.combinations(interior, 2):  # one person moved from u to v
            vec = np.zeros(shape, dtype=np.int64)
            add(vec, v, 1)
            add(vec, u, -1)
            vectors.append(vec.ravel())
        if len(shape) == 2:  # 2 x 2 rectangles inside the table
            for (r1, r2), (c1, c2) in itertools.product(itertools.combinations(range(1, shape[0]), 2),
                                                          itertools.combinations(range(1, shape[1]), 2)):
                vec = np.zeros(shape, dtype=np.int64)
                vec[r1, c1] = vec[r2, c2] = 1
                vec[r1, c2] = vec[r2, c1] = -1
                vectors.append(vec.ravel())
        self.vectors = np.array(vectors, dtype=np.int64).reshape(len(vectors), size)
        assert not self.vectors[:, 0].any(), "a move must leave people unchanged"
        supports = [np.flatnonzero(v) for v in self.vectors]
        width = max((len(s) for s in supports), default=1)
        self.support = np.array([np.pad(s, (0, width - len(s)), mode="edge") for s in supports],
                                dtype=np.int64).reshape(len(supports), width)
        self.signs = np.array([np.pad(v[s], (0, width - len(s)), mode="edge") for v, s in
                               zip(self.vectors, supports, strict=True)], dtype=np.int64).reshape(len(supports), width)
        # moves ranked by how positive they are nationally (likely positive in every cell), then size
        strength = np.array([national[s].min() for s in supports]) if supports else np.zeros(0)
        length = np.array([len(s) for s in supports])
        self.touching: list[np.ndarray] = []
        self.fast = np.full((size, _FAST_MOVES), -1, dtype=np.int64)
        for w in range(size):
            ids = np.flatnonzero(self.vectors[:, w])
            ids = ids[np.lexsort((length[ids], -strength[ids]))] if len(ids) else ids
            self.touching.append(ids)
            self.fast[w, :min(len(ids), _FAST_MOVES)] = ids[:_FAST_MOVES]


@dataclass
class _Group:
    """Families of one cube shape, stacked (members, sex, age, province, flat value)."""

    members: np.ndarray
    x: np.ndarray
    weight: np.ndarray
    sup: np.ndarray
    space: _ValueSpace
    by_province: bool


class _Engine:
    def __init__(self, people: np.ndarray, families: list[Family], k: int) -> None:
        self.people = np.ascontiguousarray(people, dtype=np.int64)
        self.families = families
        self.k = k
        self.people_sup = small(self.people, k)
        self.people_covered = np.zeros(self.people.shape, dtype=bool)
        self.covered = [np.zeros(f.x.shape, dtype=bool) for f in families]
        self.spaces = []
        for fam in families:
            fam.sup = small(fam.x, k)
            fam.sup[self._people_slice(fam)] = False  # people cells are handled on the people cube
            expected = self.people if fam.by_province else self.people[:, :, :1]
            if fam.x.shape[:3] != expected.shape or not np.array_equal(fam.x[self._people_slice(fam)], expected):
                raise ValueError(f"{fam.name}: its all-values slice is not the people cube")
            self.spaces.append(_ValueSpace(fam.x.shape[3:], fam.x[0, 0, 0].ravel()))
        self._group_families()
        self._static_partners()

    def _group_families(self) -> None:
        """Stack families of one shape so a people cube's carriers are found for all of them in one
        vectorised step; each family's ``sup`` becomes a view into its group's stacked mask."""
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for f, fam in enumerate(self.families):
            by_shape.setdefault(fam.x.shape, []).append(f)
        self.groups = []
        for shape, members in by_shape.items():
            flat = shape[:3] + (-1,)
            x = np.stack([self.families[f].x.reshape(flat) for f in members])
            weight = np.stack([self.families[f].weight.reshape(flat) for f in members])
            sup = np.stack([self.families[f].sup.reshape(flat) for f in members])
            for row, f in enumerate(members):
                self.families[f].sup = sup[row].reshape(shape)
            self.groups.append(_Group(np.array(members, dtype=np.int64), x, weight, sup, self.spaces[members[0]],
                                      shape[2] > 1))

    @staticmethod
    def _people_slice(fam: Family) -> tuple:
        return (slice(None),) * 3 + (0,) * fam.value_axes

    @staticmethod
    def _flat(fam: Family, array: np.ndarray) -> np.ndarray:
        return array.reshape(fam.x.shape[:3] + (-1,))

    def _static_partners(self) -> None:
        """Fixed partner candidates of the vectorised pass (-1 = none): the other sex or the total;
        the neighbouring bands or the total; the provinces nearest in size or the total."""
        self.sex_partners = np.array([[1, 2, -1], [2, 0, -1], [1, 0, -1]], dtype=np.int64)
        bands = self.people.shape[1] - 1
        by_size = np.argsort(-self.people[0, 1:, 0], kind="stable") + 1
        rows = [list(by_size[:3]) + [-1] * (3 - len(by_size[:3]))]
        for a in range(1, bands + 1):
            rows.append([a - 1 if a > 1 else -1, a + 1 if a < bands else -1, 0])
        self.band_partners = np.array(rows, dtype=np.int64)
        provinces = self.people.shape[2] - 1
        size = self.people[0, 0, 1:]
        by_size = np.argsort(-size, kind="stable") + 1
        rows = [list(by_size[:3]) + [-1] * (3 - len(by_size[:3]))]
        for p in range(1, provinces + 1):
            near = [int(q) + 1 for q in np.argsort(np.abs(size - size[p - 1]), kind="stable") if q + 1 != p][:2]
            rows.append(near + [-1] * (2 - len(near)) + [0])
        self.province_partners = np.array(rows, dtype=np.int64)

    @staticmethod
    def _cost(sup: np.ndarray, weight: np.ndarray, x: np.ndarray, axes) -> np.ndarray:
        """Information lost: the printed counts newly withheld, weighted (large totals and headline
        numbers cost the most), plus a little per newly withheld cell."""
        new = ~sup
        return (np.where(new, weight * (x + 0.5), 0).sum(axis=axes)
                + 0.01 * (new & (weight == 0)).sum(axis=axes))

    # --- family perturbations: vectorised pass ---------------------------------------------------

    def _fast_choices(self, f: int, cells: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
        """For primaries ``cells`` (n, 4: sex, age, province, flat value), the cheapest feasible
        perturbation among the fixed candidates: (found, (sex, age, province, value) index arrays
        of its cells, each (n, corners, support), its cost)."""
        fam, space = self.families[f], self.spaces[f]
        xf, supf, pubf = self._flat(fam, fam.x), self._flat(fam, fam.sup), self._flat(fam, fam.weight)
        s, a, p, w = cells.T
        n = len(cells)
        sx = self.sex_partners[s][:, :2]
        ax = self.band_partners[a]
        px = self.province_partners[p] if fam.by_province else np.full((n, 1), -2, dtype=np.int64)
        mx = space.fast[w]
        shape = (n, sx.shape[1], ax.shape[1], px.shape[1], mx.shape[1])
        sx = np.broadcast_to(sx[:, :, None, None, None], shape).reshape(n, -1)
        ax = np.broadcast_to(ax[:, None, :, None, None], shape).reshape(n, -1)
        px = np.broadcast_to(px[:, None, None, :, None], shape).reshape(n, -1)
        mx = np.broadcast_to(mx[:, None, None, None, :], shape).reshape(n, -1)
        valid = (sx >= 0) & (ax >= 0) & ((px >= 0) | (px == -2)) & (mx >= 0)
        axes = 3 if fam.by_province else 2
        corners = 1 << axes
        bits = (np.arange(corners)[:, None] >> np.arange(axes)[None, :]) & 1  # (corners, axes)
        cs = np.where(bits[None, None, :, 0] == 1, sx[:, :, None].clip(0), s[:, None, None])
        ca = np.where(bits[None, None, :, 1] == 1, ax[:, :, None].clip(0), a[:, None, None])
        if fam.by_province:
            cp = np.where(bits[None, None, :, 2] == 1, px[:, :, None].clip(0), p[:, None, None])
        else:
            cp = np.zeros(cs.shape, dtype=np.int64)
        cv = space.support[mx.clip(0)]  # (n, combos, support)
        # one flat index into the family (cheaper than indexing with four arrays three times)
        _s, n_a, n_p, n_v = xf.shape
        cell = ((cs * n_a + ca) * n_p + cp) * n_v  # (n, combos, corners)
        flat = cell[..., None] + cv[:, :, None, :]  # (n, combos, corners, support)
        x = xf.reshape(-1).take(flat)
        signs = (self._signs((s[:, None, None], a[:, None, None], p[:, None, None]), (cs, ca, cp))[..., None]
                 * space.signs[mx.clip(0)][:, :, None, :])
        feasible = valid & self._runs(x, signs, (2, 3))
        cost = self._cost(supf.reshape(-1).take(flat), pubf.reshape(-1).take(flat), x, (2, 3))
        best = np.argmin(np.where(feasible, cost, np.inf), axis=1)
        rows = np.arange(n)
        found = feasible[rows, best]
        chosen = np.unravel_index(flat[rows, best], xf.shape)  # each (n, corners, support)
        return found, chosen, cost[rows, best]

    @staticmethod
    def _runs(x: np.ndarray, signs: np.ndarray, axes) -> np.ndarray:
        """Whether the perturbation can run one way or the other: every cell it decreases is
        positive (cells it increases may be zero)."""
        return ((x > 0) | (signs < 0)).all(axis=axes) | ((x > 0) | (signs > 0)).all(axis=axes)

    # --- family perturbations: adaptive search -----------------------------------------------------

    @staticmethod
    def _axis_candidates(line: np.ndarray, line_sup: np.ndarray, i: int) -> list[int]:
        """Partner indices along one axis: positive parts (withheld ones first, then the smallest,
        then the largest), the total last. Axes of length 1 have no relation and get no partner."""
        size = len(line)
        if size == 1:
            return []
        parts = np.arange(1, size)
        parts = parts[(line[1:] > 0) & (parts != i)]
        out = []
        if len(parts):
            order = np.lexsort((line[parts], ~line_sup[parts]))
            out = [int(q) for q in parts[order][:_CANDIDATES]]
            out += [int(q) for q in parts[np.argsort(-line[parts], kind="stable")][:_CANDIDATES]]
        if i != 0:
            out.append(0)
        return list(dict.fromkeys(out))

    @staticmethod
    def _corners(idx: tuple[int, ...], choices: list[list[int]]) -> tuple[np.ndarray, ...]:
        """Index arrays (combos, corners) of every combination of partners (one per axis with
        candidates) and its 2^d corners; corner 0 is ``idx`` itself."""
        paired = [a for a, c in enumerate(choices) if c]
        grids = np.meshgrid(*[np.asarray(choices[a], dtype=np.int64) for a in paired], indexing="ij")
        n_combos = grids[0].size if paired else 1
        n_corners = 1 << len(paired)
        coords = []
        for a in range(len(idx)):
            if a in paired:
                bit = (np.arange(n_corners) >> paired.index(a)) & 1
                coords.append(np.where(bit[None, :] == 1, grids[paired.index(a)].reshape(-1, 1), idx[a]))
            else:
                coords.append(np.full((n_combos, n_corners), idx[a], dtype=np.int64))
        return tuple(coords)

    def _family_search(self, f: int, idx: tuple[int, int, int, int]) -> tuple[np.ndarray, ...] | None:
        fam, space = self.families[f], self.spaces[f]
        xf, supf, pubf = self._flat(fam, fam.x), self._flat(fam, fam.sup), self._flat(fam, fam.weight)
        s, a, p, w = idx
        moves = space.touching[w][:_SLOW_MOVES]
        if not len(moves):
            return None
        choices = []
        for axis in range(3):
            line_index = (s, a, p)[:axis] + (slice(None),) + (s, a, p)[axis + 1:] + (w,)
            choices.append(self._axis_candidates(xf[line_index], supf[line_index], (s, a, p)[axis]))
        cs, ca, cp = self._corners((s, a, p), choices)  # (combos, corners)
        cv = space.support[moves]  # (moves, support)
        index = (cs[:, None, :, None], ca[:, None, :, None], cp[:, None, :, None], cv[None, :, None, :])
        x = xf[index]  # (combos, moves, corners, support)
        signs = self._signs((s, a, p), (cs, ca, cp))[:, None, :, None] * space.signs[moves][None, :, None, :]
        feasible = self._runs(x, signs, (2, 3))
        if not feasible.any():
            return None
        cost = self._cost(supf[index], pubf[index], x, (2, 3))
        combo, move = np.unravel_index(int(np.argmin(np.where(feasible, cost, np.inf))), cost.shape)
        return tuple(np.broadcast_to(i, x.shape)[combo, move] for i in index), float(cost[combo, move])

    def _apply(self, f: int, flat_index: tuple[np.ndarray, ...]) -> None:
        fam = self.families[f]
        self._flat(fam, fam.sup)[flat_index] = True
        self._flat(fam, self.covered[f])[flat_index] = True

    # --- people perturbations ---------------------------------------------------------------------

    def _carriers(self, g: int, coords: tuple[np.ndarray, ...], forced: tuple[int, int] | None, need: np.ndarray):
        """For every candidate people cube (coords: (combos, corners) index arrays over sex x age x
        province) and every family of group ``g``, the family's carrier: one interior value cell
        moved with its margins, positive at every corner the family holds where the perturbation
        decreases (``need``). Returns (feasible (combos,), cells, keep, cost (combos,)); cells are
        index arrays (members, combos, corners, margins) into the group's stacked cubes."""
        group = self.groups[g]
        space = group.space
        s_idx, a_idx, p_idx = coords
        inside = np.ones(s_idx.shape, dtype=bool) if group.by_province else (p_idx == 0)
        p_f = p_idx if group.by_province else np.zeros_like(p_idx)
        interior = space.interior
        block = group.x[:, s_idx, a_idx, p_f][..., interior]  # (members, combos, corners, interior cells)
        block = np.where((inside & need)[None, :, :, None], block, np.iinfo(np.int64).max)
        worst = block.min(axis=2)  # (members, combos, interior cells)
        pick = worst.argmax(axis=2)
        if forced is not None and forced[0] in group.members:
            row = int(np.flatnonzero(group.members == forced[0])[0])
            pick[row] = int(np.flatnonzero(interior == forced[1])[0])
        feasible = (np.take_along_axis(worst, pick[..., None], axis=2)[..., 0] > 0).all(axis=0)
        cell = np.unravel_index(interior[pick], space.shape)  # chosen interior cell per member and combo
        margins = [m for m in itertools.product((0, 1), repeat=len(space.shape)) if any(m)]
        values = np.stack([np.ravel_multi_index(tuple(np.where(k, c, 0) for k, c in zip(m, cell, strict=True)),
                                                space.shape) for m in margins], axis=-1)  # (members, combos, margins)
        members = np.arange(len(group.members))[:, None, None, None]
        index = (members, s_idx[None, :, :, None], a_idx[None, :, :, None], p_f[None, :, :, None],
                 values[:, :, None, :])
        shape = (len(group.members),) + s_idx.shape + (len(margins),)
        keep = np.broadcast_to(inside[None, :, :, None], shape)
        cost = self._cost(group.sup[index] | ~keep, group.weight[index], group.x[index], (2, 3)).sum(axis=0)
        return feasible, index, keep, cost

    def _phantom(self, idx: tuple[int, int, int], forced: tuple[int, int] | None) -> list[int]:
        """The last resort, always feasible: partners that make every corner a total containing one
        positive interior cell ``e`` of the cell's box (on axes where the cell is a part, the axis
        total; elsewhere ``e``'s part): adding a person at ``e`` moves exactly these cells."""
        box = tuple(slice(1, None) if idx[a] == 0 else slice(idx[a], idx[a] + 1) for a in range(3))
        weight = self.people[box].astype(np.float64)
        if forced is not None:
            fam = self.families[forced[0]]
            xf = self._flat(fam, fam.x)
            column = xf[box + (forced[1],)] if fam.by_province else xf[(box[0], box[1], slice(0, 1), forced[1])]
            weight = np.where(weight > 0, column, 0)
        e = np.unravel_index(int(np.argmax(weight)), weight.shape)
        return [int(e[a]) + 1 if idx[a] == 0 else 0 for a in range(3)]

    def _people_cube(self, idx: tuple[int, int, int], forced: tuple[int, int] | None = None) -> bool:
        """Protect people cell ``idx`` (and, with ``forced`` = (family, interior flat value), that
        family's cell): a hypercube over sex x age x province plus a carrier in every family."""
        choices = []
        for a in range(3):
            line_index = idx[:a] + (slice(None),) + idx[a + 1:]
            choices.append(self._axis_candidates(self.people[line_index], self.people_sup[line_index], idx[a]))
        coords = self._corners(idx, choices)
        last = self._corners(idx, [[q] for q in self._phantom(idx, forced)])
        coords = tuple(np.concatenate([c, extra]) for c, extra in zip(coords, last, strict=True))
        x = self.people[coords]
        signs = self._signs(idx, coords)
        shown_cost = self._cost(self.people_sup[coords], np.ones(x.shape), x, 1)
        best = None
        # either direction: the cells that decrease must be positive (those that grow need not be);
        # carriers are costly to evaluate, so only for the cheapest people cubes, a batch at a time
        for need in (signs > 0, signs < 0):
            candidates = np.flatnonzero(((x > 0) | ~need).all(axis=1))
            candidates = candidates[np.argsort(shown_cost[candidates], kind="stable")]
            for start in range(0, len(candidates), _PEOPLE_BATCH):
                batch = candidates[start:start + _PEOPLE_BATCH]
                sub = tuple(c[batch] for c in coords)
                feasible = np.ones(len(batch), dtype=bool)
                cost = shown_cost[batch].copy()
                carried = []
                for g in range(len(self.groups)):
                    ok, cells, keep, group_cost = self._carriers(g, sub, forced, need[batch])
                    feasible &= ok
                    cost += group_cost
                    carried.append((cells, keep))
                    if not feasible.any():
                        break
                if feasible.any():
                    n = int(np.argmin(np.where(feasible, cost, np.inf)))
                    if best is None or cost[n] < best[0]:
                        best = (float(cost[n]), sub, n, carried)
                    break
        if best is None:
            return False
        _cost, coords, n, carried = best
        corners = tuple(c[n] for c in coords)
        self.people_sup[corners] = True
        self.people_covered[corners] = True
        for g, (cells, keep) in enumerate(carried):
            group = self.groups[g]
            take = keep[:, n]  # (members, corners, margins)
            if not take.any():
                continue
            rows, s_i, a_i, p_i, v_i = (np.broadcast_to(c, keep.shape)[:, n][take] for c in cells)
            group.sup[rows, s_i, a_i, p_i, v_i] = True
            for row, f in enumerate(group.members):
                mine = rows == row
                if mine.any():
                    self._flat(self.families[f], self.covered[f])[s_i[mine], a_i[mine], p_i[mine], v_i[mine]] = True
        return True

    @staticmethod
    def _signs(idx: tuple[int, ...], coords: tuple[np.ndarray, ...]) -> np.ndarray:
        """Sign of each corner in the invisible perturbation: a part paired with another part
        flips the sign, a part paired with its total keeps it."""
        signs = np.ones(np.broadcast(*coords, *idx).shape, dtype=np.int64)
        for a, c in enumerate(coords):
            signs = signs * np.where((c != idx[a]) & (c != 0) & (np.asarray(idx[a]) != 0), -1, 1)
        return signs

    # --- the pass ---------------------------------------------------------------------------------

    def run(self) -> None:
        primary = np.argwhere(small(self.people, self.k))
        for idx in sorted(map(tuple, primary), key=lambda i: (self.people[i], i)):
            if not self.people_covered[idx] and not self._people_cube(tuple(int(v) for v in idx)):
                raise RuntimeError(f"no protection found for people cell {idx}")  # pragma: no cover
        for f, fam in enumerate(self.families):
            xf = self._flat(fam, fam.x)
            prim = small(xf, self.k)
            prim[..., 0] = False
            cells = np.argwhere(prim)
            if not len(cells):
                continue
            cells = cells[np.lexsort((np.arange(len(cells)), xf[tuple(cells.T)]))]
            covered = self._flat(fam, self.covered[f])
            for start in range(0, len(cells), _CHUNK):
                batch = cells[start:start + _CHUNK]
                batch = batch[~covered[tuple(batch.T)]]
                if not len(batch):
                    continue
                found, chosen, fast_cost = self._fast_choices(f, batch)
                for n, cell in enumerate(batch):
                    idx = tuple(int(v) for v in cell)
                    if covered[idx]:
                        continue
                    fast = tuple(c[n] for c in chosen) if found[n] else None
                    # the fixed candidates may fit only through national totals, or a province cell's
                    # perturbation may climb to the national margins: search adaptively too
                    climbs = fast is not None and idx[2] != 0 and bool((fast[2] == 0).any())
                    national = fast is not None and bool(((fast[0] == 0) & (fast[1] == 0) & (fast[2] == 0)).any())
                    if fast is None or climbs or national:
                        searched = self._family_search(f, idx)
                        if searched is not None and (fast is None or searched[1] < fast_cost[n]):
                            fast = searched[0]
                    if fast is not None:
                        self._apply(f, fast)
                        continue
                    if not self._people_cube(idx[:3], (f, self._interior_in_box(f, idx))):
                        raise RuntimeError(f"no protection found for {fam.name} cell {idx}")  # pragma: no cover
        for fam in self.families:
            fam.sup[self._people_slice(fam)] = self.people_sup if fam.by_province else self.people_sup[:, :, :1]

    def _interior_in_box(self, f: int, idx: tuple[int, int, int, int]) -> int:
        """The interior value cell with the most people inside value cell ``idx[3]``'s box."""
        fam, space = self.families[f], self.spaces[f]
        cell = np.unravel_index(idx[3], space.shape)
        box = tuple(slice(1, None) if c == 0 else slice(c, c + 1) for c in cell)
        block = fam.x[idx[:3]][box]
        inner = np.unravel_index(int(np.argmax(block)), block.shape)
        return int(np.ravel_multi_index(tuple(b.start + i for b, i in zip(box, inner, strict=True)), space.shape))


def protect(people: np.ndarray, families: list[Family], k: int, memo: MaskMemo | None = None) -> np.ndarray:
    """Run the pass: fills every ``family.sup`` and returns the people mask (same layout as people).

    With ``memo``, a pass over exactly the same inputs (cubes, weights, k, this module's code) is
    not run again: its masks are read back (:mod:`shared.stats.mask_memo`)."""
    if k <= 1:
        for fam in families:
            fam.sup = np.zeros(fam.x.shape, dtype=bool)
        return np.zeros(people.shape, dtype=bool)
    digest = _digest(people, families, k) if memo is not None else None
    if digest is not None:
        stored = memo.get(digest)
        if stored is not None:
            return _unpack(stored, people, families)
    engine = _Engine(people, families, k)
    engine.run()
    if digest is not None:
        memo.put(digest, _pack(engine.people_sup, families))
    return engine.people_sup


def _code_digest() -> bytes:
    global _CODE
    if _CODE is None:
        _CODE = hashlib.sha256(Path(__file__).read_bytes()).digest()
    return _CODE


_CODE: bytes | None = None


def _digest(people: np.ndarray, families: list[Family], k: int) -> str:
    h = hashlib.sha256(_code_digest())
    h.update(f"k={k};".encode())
    for array in (people, *(a for fam in families for a in (fam.x, fam.weight))):
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape};".encode())
        h.update(array.data)
    h.update(";".join(fam.name for fam in families).encode())
    return h.hexdigest()


def _pack(people_sup: np.ndarray, families: list[Family]) -> bytes:
    bits = np.concatenate([people_sup.ravel(), *(fam.sup.ravel() for fam in families)])
    return zlib.compress(np.packbits(bits).tobytes(), 1)


def _unpack(stored: bytes, people: np.ndarray, families: list[Family]) -> np.ndarray:
    sizes = [people.size, *(fam.x.size for fam in families)]
    bits = np.unpackbits(np.frombuffer(zlib.decompress(stored), dtype=np.uint8), count=sum(sizes)).astype(bool)
    parts = np.split(bits, np.cumsum(sizes)[:-1])
    for fam, part in zip(families, parts[1:], strict=True):
        fam.sup = part.reshape(fam.x.shape)
    return parts[0].reshape(people.shape)
