#!/usr/bin/env bash
# tests/old_stores/make.sh COMMIT OUTDIR: a server store and a device store made by the code of
# COMMIT (a temporary worktree in /tmp) from a 20-profile ship: the server imports it, a device
# syncs and registers one card where that commit can. Kept here gzipped as OUTDIR/*.duckdb.gz.
set -euo pipefail
commit=$1; out=$2; repo=$(git rev-parse --show-toplevel); py=$repo/.venv/bin/python
tree=/tmp/old-$commit
[ -d $tree ] || git -C $repo worktree add -f --detach $tree $commit >/dev/null 2>&1
out=$(realpath -m $out); mkdir -p $out; work=$(mktemp -d)
cd $tree
export PYTHONPATH=$tree
$py -m muster_tui fixtures ship --preset small --seed 7 --out $work/ship >/dev/null 2>&1 || $py -m muster_tui fixtures ship --preset small --out $work/ship
$py - "$work/ship" <<'PY'
import sys, duckdb
ship = sys.argv[1]
keep = "SELECT profile_id FROM '{0}/reservations.parquet' ORDER BY profile_id LIMIT 20".format(ship)
for key, where in (("reservations", "profile_id IN ({})"), ("pictures", "profile_id IN ({})")):
    rows = duckdb.sql(f"SELECT * FROM '{ship}/{key}.parquet' WHERE " + where.format(keep)).to_arrow_table()
    import pyarrow.parquet as pq
    pq.write_table(rows, f"{ship}/{key}.parquet")
PY
coproc SRV { exec $py -m muster_tui server --data $work/ship --db $work/server.duckdb --port 0 2>$work/server.log; }
read -r line <&"${SRV[0]}"
url=$($py -c "import json,sys;print(json.loads(sys.argv[1])['url'])" "$line")
$py -m muster_tui sync --server $url --db $work/device.duckdb --user demo --password demo >$work/sync.json || true
card=$($py -c "import duckdb;print(duckdb.connect('$work/device.duckdb',read_only=True).execute(\"select board_card_number from reservations order by profile_id limit 1\").fetchall()[0][0])" 2>/dev/null || true)
$py -m muster_tui register --server $url --db $work/device.duckdb --user demo --password demo --mode GENASS --station A --card $card --force >$work/register.json 2>&1 || true
kill $SRV_PID; wait $SRV_PID || true
for f in server device; do $py -c "import duckdb,sys;c=duckdb.connect(sys.argv[1]);c.execute('CHECKPOINT');c.close()" $work/$f.duckdb; done
for f in server device; do gzip -9 -n -c $work/$f.duckdb > $out/$f.duckdb.gz; done
git -C $repo worktree remove --force $tree; rm -rf $work
