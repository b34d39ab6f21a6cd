#!/usr/bin/env bash
# Push the history worktree's new commit to BRANCH of REMOTE without losing anyone's run.
#
# Two runner kinds (matrix jobs) finish at about the same time and each adds files of its own
# folder; a plain push of the second is rejected. So: fetch, rebase the new commit onto what is
# there now (no conflicts: each kind writes only its own folder), push again; a few tries, with a
# pause that grows and differs per job. Used by .github/workflows/perf-history.yml; tested in
# tests/test_workflows.py with two concurrent pushes into a bare repository.
#
#   scripts/push_history.sh HISTORY_WORKTREE REMOTE BRANCH
set -euo pipefail
tree=$1 remote=$2 branch=$3
cd "$tree"
for attempt in 1 2 3 4 5 6 7 8; do
  if git push --quiet "$remote" "HEAD:$branch" 2>/dev/null; then
    echo "pushed to $branch (attempt $attempt)"
    exit 0
  fi
  sleep "$(awk -v a="$attempt" -v s="$RANDOM" 'BEGIN { srand(s); print a * 0.5 + rand() }')"
  git fetch --quiet "$remote" "$branch"
  git rebase --quiet FETCH_HEAD
done
echo "push_history: $branch still moving after 8 tries; giving up (the run is kept in this job's artifact)" >&2
exit 1
