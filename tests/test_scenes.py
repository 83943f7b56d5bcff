"""Issue 27's design pieces: per-frame norms and a local feature floor (nothing outside a frame's
receptive field reaches it), scene-style training examples, their activity labels, synthetic cries
and decoys, fine-tuning into a network with new layers, and the precision switch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cocktail_cli import precision
from cocktail_cli.classes import CLASSES
from cocktail_cli.cries import draw_cry, render_cry
from cocktail_cli.decoys import KINDS, draw_decoy, render_decoy
from cocktail_cli.losses import activity_labels
from cocktail_cli.mixing import ClipBank, MixConfig, draw_example, draw_scene
from cocktail_cli.nets import build
from cocktail_cli.nets.norm import log_magnitude
from cocktail_cli.separator import Separator
from cocktail_cli.stft import STFTConfig

SMALL_TCN = dict(n_bins=65, channels=16, hidden=24, depth=3, repeats=1, norm="none", floor_db=80.0)


def _frames_reaching(net, mag: torch.Tensor, frame: int, far: slice) -> float:
    """How much the output at ``frame`` moves when frames ``far`` of the input change."""
    with torch.no_grad():
        a = net(mag)
        changed = mag.clone()
        changed[..., far] = changed[..., far] * 50.0 + 3.0
        b = net(changed)
    return float((a[..., frame] - b[..., frame]).abs().max())


@pytest.mark.parametrize("block_norm, local", [("global", False), ("frame", True)])
def test_only_the_per_frame_network_is_deaf_beyond_its_receptive_field(block_norm, local):
    torch.manual_seed(0)
    net = build("tcn", **SMALL_TCN, block_norm=block_norm, floor_frames=15 if local else None).eval()
    rf = net.receptive_field()  # 1 + 2 * (1 + 2 + 4) = 15 frames
    assert rf == 15
    mag = torch.rand(1, 65, 200) + 0.01
    moved = _frames_reaching(net, mag, 20, slice(20 + rf, 200))  # everything from a field away on
    if block_norm == "frame":
        assert moved == 0.0
    else:
        assert moved > 1e-3  # GroupNorm(1, C) and the chunk-wide floor carry the far frames in
    # ... and the near frames do reach it
    assert _frames_reaching(net, mag, 20, slice(22, 24)) > 1e-4


@pytest.mark.parametrize("refine", [0, 2])
def test_the_strided_tcn_is_deaf_beyond_its_field_and_its_refine_blocks_widen_it(refine):
    torch.manual_seed(0)
    small = dict(n_bins=65, skip=8, channels=16, hidden=24, depth=2, repeats=1, stride=4, norm="none",
                 floor_db=80.0, floor_frames=15)
    net = build("stcn", **small, refine=refine).eval()
    rf = net.receptive_field()
    assert rf == 4 * (2 + 2 * (1 + 2)) + 2 * (refine and 1 + 2)  # the refine blocks: dilations 1, 2
    assert ("refine" in net.config) == bool(refine)  # a refine-less checkpoint's config is as before
    mag = torch.rand(1, 65, 240) + 0.01
    with torch.no_grad():
        masks = net(mag)
    assert torch.allclose(masks.sum(1), torch.ones(1, 65, 240), atol=1e-5)
    assert _frames_reaching(net, mag, 40, slice(40 + rf, 240)) == 0.0
    assert _frames_reaching(net, mag, 40, slice(41, 42)) > 1e-5


def test_window_norm_is_groupnorm_over_its_window_and_deaf_beyond_it():
    from cocktail_cli.nets.norm import WindowNorm

    torch.manual_seed(0)
    gn = torch.nn.GroupNorm(1, 6)
    torch.nn.init.normal_(gn.weight)
    torch.nn.init.normal_(gn.bias)
    win = WindowNorm(6, window=41)
    win.load_state_dict(gn.state_dict())  # the same parameters: a GroupNorm network's weights load
    x = torch.randn(2, 6, 20) * 3 + 1
    # an input no longer than half the window: every frame's window spans it all, as GroupNorm's
    assert torch.allclose(win(x), gn(x), atol=1e-4)
    long = torch.randn(1, 6, 200)
    # a frame's statistics are those of GroupNorm over the 41 frames around it
    assert torch.allclose(win(long)[..., 100], gn(long[..., 80:121])[..., 20], atol=1e-4)
    changed = long.clone()
    changed[..., 121:] = changed[..., 121:] * 40 + 5
    assert torch.equal(win(long)[..., :101], win(changed)[..., :101])  # more than 20 frames away: unheard
    assert not torch.allclose(win(long)[..., 101], win(changed)[..., 101])
    with pytest.raises(ValueError, match="odd"):
        WindowNorm(6, window=40)


def test_a_window_norm_tcn_loads_groupnorm_weights_and_only_its_neighbourhood_reaches_a_frame():
    torch.manual_seed(1)
    chunk = build("tcn", **SMALL_TCN).eval()
    window = build("tcn", **SMALL_TCN, block_norm="window", norm_window=31).eval()
    window.load_state_dict(chunk.state_dict())
    assert window.config["norm_window"] == 31 and window.config["block_norm"] == "window"
    short = torch.rand(1, 65, 12) + 0.01  # under half the window: the same network
    with torch.no_grad():
        assert torch.allclose(window(short), chunk(short), atol=1e-5)
    # 3 blocks x 2 norms x 15 frames + the convolutions' 7 + the floor's reach: nothing further
    local = build("tcn", **SMALL_TCN, block_norm="window", norm_window=31, floor_frames=15).eval()
    mag = torch.rand(1, 65, 300) + 0.01
    assert _frames_reaching(local, mag, 20, slice(20 + 6 * 15 + 7 + 8, 300)) == 0.0
    assert _frames_reaching(local, mag, 20, slice(40, 60)) > 1e-4


def test_weighted_window_norm_does_not_hear_silence_around_a_sound():
    from cocktail_cli.nets.norm import WindowNorm, frame_weights

    torch.manual_seed(2)
    win = WindowNorm(6, window=41)
    sound = torch.randn(1, 6, 30) * 2 + 1
    quiet = torch.full((1, 6, 40), -3.0) + 0.01 * torch.randn(1, 6, 40)  # what silence's features look like
    x = torch.cat([quiet, sound], -1)
    mag = torch.cat([torch.zeros(1, 9, 40), torch.rand(1, 9, 30) + 0.5], -1)  # silence, then the sound
    alone = win(sound, frame_weights(mag[..., 40:], "amplitude"))
    padded = win(x, frame_weights(mag, "amplitude"))[..., 40:]
    assert torch.allclose(alone, padded, atol=1e-4)  # silence counts for nothing in the sound's statistics
    assert not torch.allclose(win(sound), win(x)[..., 40:], atol=1e-2)  # with every frame alike it does
    # all frames equally loud: the same as unweighted
    flat, y = torch.ones(1, 9, 70), torch.randn(1, 6, 70)
    assert torch.allclose(win(y, frame_weights(flat, "energy")), win(y), atol=1e-5)
    assert frame_weights(flat, "uniform") is None
    with pytest.raises(ValueError, match="norm_weighting"):
        frame_weights(flat, "loud")


def test_shipped_weights_with_weighted_windows_keep_a_siren_wherever_it_sits(tmp_path):
    """Issue 27's failure (a siren lost when silence surrounds it), with the shipped weights and no
    training: chunk statistics lose the siren, amplitude-weighted windows keep it."""
    from cocktail_cli.checkpoint import default_model_path, read_raw, save_raw
    from cocktail_cli.shares import stem_shares
    from cocktail_cli.sirens import draw_siren, render_siren

    raw = read_raw(default_model_path())
    raw["arch_args"].update(block_norm="window", norm_window=173, floor_frames=125, norm_weighting="amplitude")
    windowed = Separator.from_checkpoint(save_raw(tmp_path / "windowed.pt", raw))
    for key in ("block_norm", "norm_window", "floor_frames", "norm_weighting"):  # GroupNorm over the chunk,
        del raw["arch_args"][key]  # as the shipped weights were trained and shipped until 2026-12-04
    chunked = Separator.from_checkpoint(save_raw(tmp_path / "chunked.pt", raw))
    sr = chunked.sample_rate
    siren = (render_siren(draw_siren(np.random.default_rng(90004)), 3 * sr, sr) * 0.5).astype(np.float32)
    padded = np.concatenate([np.zeros(8 * sr, np.float32), siren, np.zeros(9 * sr, np.float32)])
    k = CLASSES.index("siren")
    shares = {name: (stem_shares(sep, siren, sr)[k], stem_shares(sep, padded, sr)[k]) for name, sep in
              (("chunk", chunked), ("window", windowed))}
    assert shares["window"][0] > 0.8 and abs(shares["window"][1] - shares["window"][0]) <= 0.05, shares
    assert shares["chunk"][0] - shares["chunk"][1] > 0.2, shares  # the failure it removes


def test_local_floor_follows_the_loudest_bin_nearby():
    mag = torch.full((1, 4, 100), 1e-9)
    mag[..., 10] = 1.0  # one loud frame
    whole = log_magnitude(mag, 1e-5, 80.0)
    local = log_magnitude(mag, 1e-5, 80.0, floor_frames=11)
    floor = float(np.log(1e-4 + 1e-5))
    assert torch.allclose(whole[..., 90], torch.tensor(floor))  # the chunk-wide floor reaches frame 90
    assert float(local[..., 90].max()) < floor - 1.0  # the local one does not
    assert torch.allclose(local[..., 14], torch.tensor(floor))  # within 5 frames it does


def _bank(sr: int = 8000, seconds: float = 3.0, clips: int = 4) -> ClipBank:
    rng = np.random.default_rng(0)
    bank = ClipBank(sr, "train")
    t = np.arange(int(sr * seconds)) / sr
    for c, cls in enumerate(CLASSES):
        bank.clips[cls] = [
            np.round(np.sin(2 * np.pi * (200 + 150 * c + 10 * k) * t) * 0.5 * 32767 * (1 + 0.1 * rng.standard_normal(len(t)))).clip(-32768, 32767).astype(np.int16)
            for k in range(clips)
        ]
    return bank


def test_scenes_have_events_that_start_and_stop_over_a_background():
    bank = _bank()
    cfg = MixConfig(seconds=6.0, scene_prob=1.0, noise_prob=0.0, bits=(0,), bits_prob=(1.0,), roundtrip_prob=0.0,
                    lowpass_prob=0.0, scene_background_prob=1.0)
    starts_and_stops = silent_gaps = empty = 0
    for i in range(40):
        stems = draw_scene(np.random.default_rng(i), bank, cfg)
        assert stems.shape == (5, 48000)
        present = [c for c in range(4) if np.abs(stems[c]).max() > 0]
        empty += not present
        for c in present:
            on = np.abs(stems[c]).reshape(-1, 400).max(1) > 1e-4  # 50 ms blocks
            starts_and_stops += (not on.all())
            silent_gaps += int(np.sum(np.diff(on.astype(int)) == 1) > 1)  # heard twice
        assert np.abs(stems[4]).reshape(-1, 400).max(1).min() > 0  # the background runs on
    assert starts_and_stops >= 30 and silent_gaps >= 3 and empty >= 1
    # a pure function of the seed
    assert np.array_equal(draw_scene(np.random.default_rng(5), bank, cfg), draw_scene(np.random.default_rng(5), bank, cfg))


def test_scene_prob_off_draws_exactly_as_before():
    bank = _bank()
    a = draw_example(np.random.default_rng(3), bank, MixConfig(seconds=2.0))
    b = draw_example(np.random.default_rng(3), bank, MixConfig(seconds=2.0, scene_prob=0.0, synthetic_cry_prob=0.0, decoy_prob=0.0))
    assert np.array_equal(a, b)


def test_activity_labels_mark_where_a_stem_sounds():
    sr, hop, n_fft = 8000, 64, 256
    stems = torch.zeros(1, 5, sr * 3)
    t = torch.arange(sr) / sr
    stems[0, 1, sr : 2 * sr] = torch.sin(2 * np.pi * 500 * t)  # a siren from 1 s to 2 s
    stems[0, 4] = 0.01 * torch.randn(sr * 3)  # quiet background throughout
    frames = 3 * sr // hop + 1
    labels = activity_labels(stems, n_fft, hop, frames)
    times = np.arange(frames) * hop / sr
    on = labels[0, 1].numpy() > 0
    assert on[(times > 1.05) & (times < 1.95)].all()
    assert not on[(times < 0.95) | (times > 2.05)].any()
    assert labels[0, 4].mean() > 0.95  # the background is there all along
    assert labels[0, 0].sum() == 0  # an empty stem is never active
    # two barks 0.3 s apart are one event; 0.8 s apart, two
    stems[0, 2, int(0.2 * sr) : int(0.5 * sr)] = 1.0
    stems[0, 2, int(0.8 * sr) : int(1.1 * sr)] = 1.0
    stems[0, 2, int(1.9 * sr) : int(2.2 * sr)] = 1.0
    closed = activity_labels(stems, n_fft, hop, frames, sample_rate=sr)[0, 2].numpy() > 0
    assert closed[(times > 0.25) & (times < 1.05)].all()
    assert not closed[(times > 1.2) & (times < 1.8)].any() and closed[(times > 1.95) & (times < 2.15)].all()
    assert not closed[(times < 0.15) | (times > 2.25)].any()


def test_synthetic_cries_are_full_band_and_in_a_cry_range():
    sr = 22050
    for seed in range(3):
        x = render_cry(draw_cry(np.random.default_rng(seed)), 4 * sr, sr)
        assert np.isfinite(x).all() and 0.9 < np.abs(x).max() <= 1.0
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / sr)
        assert spec[f > 6000].sum() / spec.sum() > 1e-4  # harmonics past a phone line's 4 kHz
        voiced = spec[(f > 250) & (f < 2000)].sum() / spec.sum()
        assert voiced > 0.3
        # pauses between cry units: some 50 ms blocks are far quieter than the loudest
        blocks = np.sqrt((x[: len(x) // 1102 * 1102].reshape(-1, 1102) ** 2).mean(1))
        assert blocks.min() < blocks.max() * 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_every_decoy_kind_renders(kind):
    rng = np.random.default_rng(1)
    p = draw_decoy(rng)
    p["kind"] = kind
    x = render_decoy(p, 22050 * 2, 22050)
    assert x.shape == (44100,) and np.isfinite(x).all() and 0.9 < np.abs(x).max() <= 1.0


def test_precision_auto_follows_the_cpu(monkeypatch):
    precision.cpu_has_fast_bf16.cache_clear()
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "fma"})
    assert precision.resolve("auto", "cpu") == "fp32"
    precision.cpu_has_fast_bf16.cache_clear()
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "amx_bf16", "amx_tile"})
    assert precision.resolve("auto", "cpu") == "bf16"
    precision.cpu_has_fast_bf16.cache_clear()
    assert precision.resolve("auto", "cuda:0") == "bf16"
    assert precision.resolve("fp32", "cuda") == "fp32" and precision.resolve("BF16") == "bf16"
    with pytest.raises(ValueError):
        precision.resolve("fp8")


def test_bf16_and_fp32_separations_agree():
    from cocktail_cli.metrics import si_sdr

    torch.manual_seed(0)
    net = build("tcn", n_bins=129, channels=32, hidden=64, depth=3, repeats=1, norm="none", floor_db=80.0,
                block_norm="frame").eval()
    stft = STFTConfig(sample_rate=8000, n_fft=256, hop=64)
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 8000
    mixes = torch.tensor(np.stack([np.sin(2 * np.pi * (300 + 100 * k) * t) + 0.3 * rng.standard_normal(len(t)) for k in range(4)]), dtype=torch.float32)
    with torch.inference_mode():
        a = Separator(net, stft, precision="fp32")(mixes).numpy().astype(np.float64)
        b = Separator(net, stft, precision="bf16")(mixes).numpy().astype(np.float64)
    agreement = si_sdr(b, a)  # the bf16 stems scored against the float32 ones
    assert np.mean(agreement) > 25.0  # dB: differences 25 dB under the stems change SI-SDR by < 0.1 dB
    assert np.allclose(b.sum(1), mixes.numpy(), atol=1e-4)  # the stems still sum to the mixture


@pytest.mark.parametrize("dilations", [None, [1, 4, 16, 64]])
def test_the_context_head_hears_its_field_and_nothing_beyond(dilations):
    from cocktail_cli.nets.heads import HEAD_DILATIONS

    extra = {} if dilations is None else {"activity_dilations": dilations}
    net = build("tcn", n_bins=33, channels=8, hidden=16, depth=2, repeats=1, block_norm="frame", activity=True,
                activity_hidden=8, **extra).eval()
    reach = net.receptive_field() // 2 + sum(dilations or HEAD_DILATIONS)  # frames on each side, backbone then head
    t, cut = 480, 400
    mag = torch.rand(1, 33, t) + 0.5
    changed = mag.clone()
    changed[..., cut:] = 0.01  # everything from frame ``cut`` on
    with torch.no_grad():
        (ma, a), (mb, b) = net(mag, activity=True), net(changed, activity=True)
    differs = (a - b).abs().amax(dim=(0, 1)) > 1e-6
    assert a.shape == (1, 5, t) and torch.allclose(ma.sum(1), torch.ones(1, 33, t), atol=1e-5)
    assert not differs[: cut - reach].any() and differs[cut - reach : cut].any()
    assert differs[cut - reach]  # the farthest frame that can hear the change does


def test_init_from_adds_an_activity_head_to_a_trained_network(tmp_path):
    from cocktail_cli.checkpoint import save_checkpoint
    from cocktail_cli.errors import CheckpointError
    from cocktail_cli.train import _load_init_weights
    from cocktail_cli.checkpoint import load_checkpoint

    stft = STFTConfig(sample_rate=8000, n_fft=128, hop=32)
    old = build("tcn", **SMALL_TCN)
    save_checkpoint(tmp_path / "old.pt", old, "tcn", stft)
    init = load_checkpoint(tmp_path / "old.pt")
    new = build("tcn", **SMALL_TCN, block_norm="frame", activity=True)
    _load_init_weights(new, init, "old.pt")
    for name, value in old.state_dict().items():
        assert torch.equal(new.state_dict()[name], value)
    masks, logits = new(torch.rand(2, 65, 30), activity=True)
    assert masks.shape == (2, 5, 65, 30) and logits.shape == (2, 5, 30)
    assert torch.allclose(masks.sum(1), torch.ones(2, 65, 30), atol=1e-5)
    wider = build("tcn", **{**SMALL_TCN, "hidden": 32})
    with pytest.raises((CheckpointError, RuntimeError)):
        _load_init_weights(wider, init, "old.pt")


def test_separate_and_eval_take_a_precision_and_say_which(cli, tmp_path, monkeypatch):
    import json

    import soundfile as sf

    sr = 16000
    t = np.arange(sr) / sr
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    code, out, err = cli("separate", tmp_path / "tone.wav", "-o", tmp_path / "out", "--json", "--precision", "bf16")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["precision"] == "bf16"
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    code, out, err = cli("separate", tmp_path / "tone.wav", "-o", tmp_path / "out2", "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["precision"] == "fp32"  # auto on a CPU without bf16
    code, out, err = cli("separate", tmp_path / "tone.wav", "-o", tmp_path / "out3", "--precision", "fp8")
    assert code != 0 and "--precision" in err and not (tmp_path / "out3").exists()
