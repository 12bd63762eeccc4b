#!/usr/bin/env bash
# Re-measures `cargo bench --bench compare` and `--bench scale` of this checkout against an older
# build (default 09a6a1d), alternating the two builds in one session so machine noise hits both:
#   python-check/bench_vs_build.sh [OLD_COMMIT] [ROUNDS]
# The old build lives in the git worktree /work/wt/old (made if absent; its target/ is seeded from
# this checkout's to save compile time). Prints each run's output; compare the lines by hand or take
# the ratio new/old of the best times.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old_commit="${1:-09a6a1d}"
rounds="${2:-3}"
old="${OLD_WORKTREE:-/work/wt/old}"
if [ ! -d "$old" ]; then
    git -C "$root" worktree add "$old" "$old_commit"
    [ -d "$root/target" ] && cp -a "$root/target" "$old/target"
fi
for dir in "$root" "$old"; do (cd "$dir" && cargo bench --bench compare --bench scale --no-run); done
for i in $(seq 1 "$rounds"); do
    for which in new old; do
        dir="$root"; [ "$which" = old ] && dir="$old"
        for bench in compare scale; do
            echo "== round $i, $which build ($dir), bench $bench"
            (cd "$dir" && cargo bench --bench "$bench" 2>/dev/null)
        done
    done
done
