set -e
repo="$1"
rm -rf "$repo"
mkdir "$repo"
cd "$repo"
git init -q
cp -R ../git-files/v1/. .
git add -A
git commit -q -m "first commit"
cp -R ../git-files/v2/. .
git rm -q -r --cached d3 >/dev/null
rm -rf d3
git add -A
git commit -q -m "second commit: edits, a removed directory"
git log --stat --format='%H %an <%ae> %ad%n%s'
git diff --stat HEAD~1 HEAD
git -c pack.threads=2 gc -q
git count-objects -v | grep -E '^(count|in-pack|packs)'
git fsck --full --no-progress
git log -p --format=%H -- d1 | git hash-object --stdin
