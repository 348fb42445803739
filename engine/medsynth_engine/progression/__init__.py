"""Disease progression in one case: tumour growth (Fisher-Kolmogorov) and atrophy (prescribed Jacobian), as a series."""
