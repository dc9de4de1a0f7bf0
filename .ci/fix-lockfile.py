#!/usr/bin/env python3
# The npm registry reachable here serves only linux builds of platform packages, so the npm
# on these machines writes a package-lock.json without the other platforms optional
# entries, and then its own `npm ci` refuses that lock ("Missing: ... from lock file").
# This adds the missing optional entries (marked optional; nothing is downloaded for them).
# Run after any `npm install`: python3 .ci/fix-lockfile.py package-lock.json
import json, subprocess, sys
path = sys.argv[1]
lock = json.load(open(path))
pk = lock['packages']
added = 0
for key, meta in list(pk.items()):
    for dep, ver in (meta.get('optionalDependencies') or {}).items():
        # where npm would place it: hoisted at top level unless nested exists
        base = key + '/node_modules/' + dep if key else 'node_modules/' + dep
        top = 'node_modules/' + dep
        if base in pk or top in pk:
            continue
        out = subprocess.run(['npm', 'view', f'{dep}@{ver}', 'version', 'os', 'cpu', 'libc', 'license', '--json'], capture_output=True, text=True).stdout
        try:
            info = json.loads(out)
        except Exception:
            print('skip', dep, ver, out[:200]); continue
        if isinstance(info, list): info = info[-1]
        entry = {'version': info.get('version', ver)}
        if info.get('license'): entry['license'] = info['license']
        entry['optional'] = True
        for f in ('os', 'cpu', 'libc'):
            if info.get(f): entry[f] = info[f]
        if meta.get('dev'): entry['dev'] = True
        pk[top] = entry
        added += 1
        print('added', top, entry)
lock['packages'] = dict(sorted(pk.items(), key=lambda kv: (kv[0] != '', kv[0])))
json.dump(lock, open(path, 'w'), indent=2)
open(path, 'a').write('\n')
print('added', added)
