"""Something-Something V2 from its released json files.

annotations: {labels: something-something-v2-labels.json,
train: something-something-v2-train.json, val: something-something-v2-validation.json}.
labels.json maps each class (a template with its brackets removed,
"Putting something on a surface") to its index as a string; the train and
validation lists hold {"id", "label", "template", "placeholders"}, and the
class of an entry is its `template` with "[" and "]" removed (as mmaction2's
parse_file_list does). Videos: `{id}.webm` (the official `20bn-something-something-v2/`
folder) or any configured extension.

Not supported: the test list (no public labels) and the internal
`sthsthv2_*.json` files of ViCLIP/UMT.
"""

from __future__ import annotations

from viclip.data.benchmarks.readers.common import (
    AnnotationError,
    Entry,
    Listing,
    check_splits,
    load_json,
    read_json_records,
    source_path,
    text_field,
)


def read_classes(path) -> list[str]:
    data = load_json(path)
    if not isinstance(data, dict) or not data:
        raise AnnotationError(f"{path}: expected an object mapping class templates to indices")
    by_index: dict[int, str] = {}
    for name, value in data.items():
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise AnnotationError(f"{path}: class {name!r}: index {value!r} is not an integer") from None
        if index in by_index:
            raise AnnotationError(f"{path}: class {name!r}: index {index} already used by {by_index[index]!r}")
        by_index[index] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(f"{path}: class indices are not 0..{len(by_index) - 1}")
    return [by_index[i] for i in range(len(by_index))]


def read(annotations: dict, splits: list[str] | None = None) -> Listing:
    labels_path = source_path(annotations, "labels", "ssv2")
    classes = read_classes(labels_path)
    index = {name: i for i, name in enumerate(classes)}
    entries, sources = [], {"labels": labels_path}
    for split in check_splits(annotations, splits, ("train", "val"), "ssv2", extra=("labels",)):
        path = source_path(annotations, split, "ssv2")
        sources[split] = path
        for where, item in read_json_records(path, ("id", "template"), "{id, template, ...}"):
            video_id = str(item["id"]).strip()
            if not video_id.isdigit():
                raise AnnotationError(f"{path}: {where}: field 'id' is not a numeric video id: {item['id']!r}")
            template = text_field(item["template"], path, where, "template")
            label = index.get(template.replace("[", "").replace("]", ""))
            if label is None:
                raise AnnotationError(f"{path}: {where}: field 'template' {template!r} names no class of {labels_path}")
            entries.append(Entry(video_id, split, (video_id,), label=label))
    return Listing("classification", entries, sources, classes=classes, eval_split="val")
