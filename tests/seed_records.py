"""The FinOps seed's two sample telemetry records, which the contract and SIDRCE must accept."""

SEED_RECORDS = [
    {
        "domain": "direct_lab",
        "hypothesis": "WIMP",
        "step": 1,
        "intervention": "-",
        "infra_cost_usd": 120,
        "qps": 480,
        "latency_p95_ms": 180,
    },
    {
        "domain": "cosmology",
        "hypothesis": "DarkPhoton",
        "step": 1,
        "intervention": "-",
        "infra_cost_usd": 130,
        "qps": 470,
        "latency_p95_ms": 190,
    },
]
