"""Proves the deal-update run reached what issue 8 was about: unit counts outside 0..=10^9,
among them int64 extremes (the wrap needed one within 100 of -2^63), sent to deals that exist,
each answered 400 (a 5xx fails schemathesis itself). Exits non-zero when the run never got
there, so a spec or script change cannot quietly make it shallow."""
import json
import re
import sys

import yaml

UNITS_MAX = 1_000_000_000
cassette = yaml.safe_load(open(sys.argv[1]))
reached = []
for interaction in cassette["http_interactions"]:
    request, response = interaction["request"], interaction["response"]
    if not re.search(r"/api/v1/deals/[1-3]$", request["uri"]):
        continue
    body = request.get("body")
    text = body.get("string", "") if isinstance(body, dict) else ""
    try:
        fields = json.loads(text)
    except ValueError:
        continue
    if not isinstance(fields, dict):
        continue
    for field in ("total_units", "available_units"):
        value = fields.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= UNITS_MAX:
            reached.append((request["method"], field, value, int(response["status"]["code"])))
wrong = [hit for hit in reached if hit[3] != 400]
print(f"schemathesis reach: {len(reached)} out-of-range unit counts sent to live deals; answered other than 400: {wrong}")
print(f"  e.g. {reached[:5]}")
# Within 10^9 of i64::MIN: `total - current_total` wraps there (issue 8's request).
extreme = [hit for hit in reached if -(2**63) <= hit[2] < -(2**63) + UNITS_MAX]
print(f"  {len(extreme)} of them where the old subtraction wrapped, e.g. {extreme[:3]}")
sys.exit(0 if extreme and not wrong else 1)
