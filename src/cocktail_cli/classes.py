"""The one class list. Every stem file, model output and metric row uses this order."""

CLASSES: tuple[str, ...] = ("baby_cry", "siren", "dog", "speech", "other")
#: The four classes a mixture may or may not contain; "other" is background and always present.
TARGET_CLASSES: tuple[str, ...] = CLASSES[:4]
N_CLASSES = len(CLASSES)


def parse_stems(spec: str | None) -> list[str]:
    """Parse a comma-separated stem list (``"speech,dog"``, any case), keeping the canonical order."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return list(CLASSES)
    wanted = [s.strip().lower() for s in spec.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in CLASSES]
    if unknown:
        raise ValueError(f"unknown stem(s) {', '.join(unknown)}; choose from {', '.join(CLASSES)}")
    return [c for c in CLASSES if c in wanted]

#: One colour per class, used by every picture (stem panels, event bars, score bars): the
#: Okabe-Ito palette, told apart by colour-blind readers too; "other" (background) is grey.
CLASS_COLOURS: dict[str, str] = {
    "baby_cry": "#CC79A7",  # reddish purple
    "siren": "#D55E00",  # vermillion
    "dog": "#009E73",  # bluish green
    "speech": "#0072B2",  # blue
    "other": "#7F7F7F",  # grey
}
