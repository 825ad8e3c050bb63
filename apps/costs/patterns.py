"""Model-name patterns shared by prices and energy coefficients: an exact name, or a prefix
ending in `*` for versioned names. No Django imports: settings validate with it."""


def pattern_matches(pattern: str, model: str) -> bool:
    if pattern.endswith("*"):
        return model.startswith(pattern[:-1])
    return model == pattern


def specificity(pattern: str) -> tuple[int, int]:
    # An exact name beats any prefix; a longer prefix beats a shorter one.
    return (0, len(pattern)) if pattern.endswith("*") else (1, len(pattern))
