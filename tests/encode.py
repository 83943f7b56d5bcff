"""Compressed test inputs made with PyAV itself: what libsndfile cannot read (M4A/AAC, Opus in WebM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: (container, codec) per extension; Opus runs at 48 kHz.
KINDS = {".m4a": ("mp4", "aac"), ".webm": ("webm", "libopus"), ".ogg": ("ogg", "libopus")}


def encode(path: str | Path, audio: np.ndarray, sr: int) -> str:
    """Write float ``(channels, samples)`` audio to ``path``, the container and codec its extension names."""
    import av

    container, codec = KINDS[Path(path).suffix]
    audio = np.ascontiguousarray(np.atleast_2d(audio), dtype=np.float32)
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=sr)
        stream.layout = layout
        ctx = stream.codec_context
        convert = av.AudioResampler(format=ctx.format.name, layout=layout, rate=sr, frame_size=ctx.frame_size or None)
        for start in range(0, audio.shape[1], 4096):
            frame = av.AudioFrame.from_ndarray(audio[:, start : start + 4096], format="fltp", layout=layout)
            frame.sample_rate = sr
            for piece in convert.resample(frame):
                for packet in stream.encode(piece):
                    out.mux(packet)
        for piece in convert.resample(None):
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return str(path)
