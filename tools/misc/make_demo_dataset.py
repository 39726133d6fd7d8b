"""Generate the synthetic aerial-scene caption dataset of the demo.

python tools/misc/make_demo_dataset.py data/demo_scenes [--num-train 800 ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rsretrieval.datasets.synthetic import make_demo_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='output folder (kept as is if it already holds a dataset)')
    parser.add_argument('--num-train', type=int, default=800)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--num-test', type=int, default=200)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    root = make_demo_dataset(args.root, args.num_train, args.num_val, args.num_test, args.image_size, args.seed)
    data = json.loads((Path(root) / 'dataset_demo.json').read_text())
    counts: dict[str, int] = {}
    for image in data['images']:
        counts[image['split']] = counts.get(image['split'], 0) + 1
    print(f'{root}: {counts} images, 5 captions each')


if __name__ == '__main__':
    main()
