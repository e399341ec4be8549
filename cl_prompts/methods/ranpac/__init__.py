"""RanPAC: random-projection features of the frozen query, ridge regression in closed form."""
