"""An automated attacker on published statistics: every additive relation between published cells,
solved for every withheld one.

The cells of a year are the people cube and the family cubes of shared.stats.suppression (every
axis with its total at index 0; a family's all-values slice is the people cube). The attacker knows
every cell that is not withheld (a superset of what the payloads print) and every line relation
(a total equals the sum of its parts, along every axis of every cube).

Three attacks:

* ``difference``: the classic one - repeatedly take a relation with exactly one unknown and solve
  it - until nothing changes.
* ``rank``: linear algebra over all relations at once. A withheld cell is determined iff every
  vector in the null space of the relations (restricted to withheld cells) is zero there. Families
  only meet in people cells, so each family is reduced separately and only the people cells are
  solved jointly (a Schur-complement split), which keeps every matrix small.
* ``interval``: linear programming (HiGHS through scipy) over every relation with every unknown
  cell non-negative: the smallest and largest value a withheld cell can take. The rank audit
  ignores non-negativity; this one does not, so it also catches a cell pinned because its
  partners sit at zero.
"""

from __future__ import annotations

import numpy as np

_TOL = 1e-7


def lines(shape: tuple[int, ...]):
    """Every line relation of a cube with totals at index 0: (total flat index, part flat indices)."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    for axis, size in enumerate(shape):
        if size < 2:
            continue
        moved = np.moveaxis(index, axis, -1).reshape(-1, size)
        for row in moved:
            yield int(row[0]), [int(v) for v in row[1:]]


class System:
    """Relations of one year: the people cube and its families, with what is withheld."""

    def __init__(self, people: np.ndarray, people_sup: np.ndarray, families) -> None:
        self.people, self.people_sup = people, people_sup
        self.families = families

    def _key(self, f: int, flat: int):
        fam = self.families[f]
        idx = np.unravel_index(flat, fam.x.shape)
        if all(v == 0 for v in idx[3:]):
            return ("people", tuple(int(v) for v in idx[:3]))
        return (f, tuple(int(v) for v in idx))

    def value(self, key) -> int:
        return int(self.people[key[1]] if key[0] == "people" else self.families[key[0]].x[key[1]])

    def withheld(self, key) -> bool:
        return bool(self.people_sup[key[1]] if key[0] == "people" else self.families[key[0]].sup[key[1]])

    def relations(self):
        """Every relation as (list of (key, coefficient)), duplicates across families included."""
        for f, fam in enumerate(self.families):
            for total, parts in lines(fam.x.shape):
                yield [(self._key(f, total), 1)] + [(self._key(f, p), -1) for p in parts]

    # --- attacks ---------------------------------------------------------------------------------

    def difference(self) -> dict:
        """Cells recovered by repeated single-unknown subtraction: {key: value}."""
        known: dict = {}
        rels = [r for r in self.relations() if any(self.withheld(k) for k, _ in r)]
        changed = True
        while changed:
            changed = False
            for rel in rels:
                unknown = [(k, c) for k, c in rel if self.withheld(k) and k not in known]
                if len(unknown) != 1:
                    continue
                key, coef = unknown[0]
                rest = sum(c * (known[k] if k in known else self.value(k)) for k, c in rel if k != key)
                known[key] = -rest // coef
                changed = True
        return known

    def determined(self) -> set:
        """Withheld cells whose value every combination of relations pins down (rank audit)."""
        z_keys = sorted({("people", tuple(int(v) for v in i)) for i in np.argwhere(self.people_sup)})
        z_index = {k: i for i, k in enumerate(z_keys)}
        blocks = []
        for f, fam in enumerate(self.families):
            y_keys: dict = {}
            rows_a, rows_b = [], []
            for total, parts in lines(fam.x.shape):
                members = [(self._key(f, total), 1)] + [(self._key(f, p), -1) for p in parts]
                if not any(self.withheld(k) for k, _ in members):
                    continue
                a_row, b_row = {}, {}
                for key, coef in members:
                    if not self.withheld(key):
                        continue
                    if key[0] == "people":
                        b_row[z_index[key]] = b_row.get(z_index[key], 0) + coef
                    else:
                        j = y_keys.setdefault(key, len(y_keys))
                        a_row[j] = a_row.get(j, 0) + coef
                rows_a.append(a_row)
                rows_b.append(b_row)
            a = np.zeros((len(rows_a), len(y_keys)))
            b = np.zeros((len(rows_b), len(z_keys)))
            for r, (ar, br) in enumerate(zip(rows_a, rows_b, strict=True)):
                for j, c in ar.items():
                    a[r, j] = c
                for j, c in br.items():
                    b[r, j] = c
            blocks.append((list(y_keys), a, b))
        # people cells: allowed z keep every family solvable, B_f z in range(A_f): (I - A A+) B z = 0
        constraints = []
        reduced = []
        for y_keys, a, b in blocks:
            m, n = a.shape
            if n:
                u, s, vt = np.linalg.svd(a, full_matrices=m < n)
                rank = int((s > _TOL * max(1.0, s.max(initial=0))).sum())
                null = vt[rank:].T
                pinv = vt[:rank].T @ np.diag(1.0 / s[:rank]) @ u[:, :rank].T
            else:
                null = np.zeros((0, 0))
                pinv = np.zeros((0, m))
            if b.size:
                constraints.append(b - a @ (pinv @ b) if n else b)
            reduced.append((y_keys, null, pinv, b))
        if z_keys:
            c = np.vstack(constraints) if constraints else np.zeros((0, len(z_keys)))
            if c.size:
                _u, s, vt = np.linalg.svd(c, full_matrices=False)
                rank = int((s > _TOL * max(1.0, s.max(initial=0))).sum())
                full = np.linalg.svd(c, full_matrices=True)[2] if vt.shape[0] < len(z_keys) else vt
                z_null = full[rank:].T
            else:
                z_null = np.eye(len(z_keys))
        else:
            z_null = np.zeros((0, 0))
        found = set()
        for j, key in enumerate(z_keys):
            if not z_null.size or np.abs(z_null[j]).max() < _TOL:
                found.add(key)
        for y_keys, null, pinv, b in reduced:
            through_people = pinv @ b @ z_null if (b.size and z_null.size) else np.zeros((len(y_keys), 0))
            for i, key in enumerate(y_keys):
                free = null[i] if null.size else np.zeros(0)
                moved = np.abs(free).max(initial=0) > _TOL or np.abs(through_people[i]).max(initial=0) > _TOL
                if not moved:
                    found.add(key)
        return found

    def withheld_keys(self) -> list:
        out = [("people", tuple(int(v) for v in i)) for i in np.argwhere(self.people_sup)]
        for f, fam in enumerate(self.families):
            for idx in np.argwhere(fam.sup):
                if any(v != 0 for v in idx[3:]):
                    out.append((f, tuple(int(v) for v in idx)))
        return out

    def interval_pinned(self, targets) -> list:
        """Withheld cells among ``targets`` whose value the relations plus non-negativity pin down
        (min == max of a linear program); each target is tried upwards, then downwards."""
        from scipy.optimize import linprog
        from scipy.sparse import coo_matrix

        unknown = {key: i for i, key in enumerate(self.withheld_keys())}
        rows, cols, vals, rhs = [], [], [], []
        for rel in self.relations():
            members = [(k, c) for k, c in rel if k in unknown]
            if not members:
                continue
            r = len(rhs)
            for key, coef in members:
                rows.append(r)
                cols.append(unknown[key])
                vals.append(coef)
            rhs.append(-sum(c * self.value(k) for k, c in rel if k not in unknown))
        a_eq = coo_matrix((vals, (rows, cols)), shape=(len(rhs), len(unknown))).tocsr()
        pinned = []
        for key in targets:
            j = unknown[key]
            truth = self.value(key)
            objective = np.zeros(len(unknown))
            moved = False
            for sign in (-1.0, 1.0):  # maximise, then minimise x_j
                objective[j] = sign
                result = linprog(objective, A_eq=a_eq, b_eq=rhs, bounds=(0, None), method="highs")
                assert result.status == 0, result.message  # the truth is always feasible
                if abs(result.x[j] - truth) > 0.5:
                    moved = True
                    break
            if not moved:
                pinned.append(key)
        return pinned


COUNT_FIELDS = ("n", "n_positive", "n_negative", "n_unknown", "not_in_panel")


def printed_counts(node):
    """Every count a payload prints (the fields above, integers only), walking its whole body."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name in COUNT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
                yield value
            else:
                yield from printed_counts(value)
    elif isinstance(node, list):
        for item in node:
            yield from printed_counts(item)
