"""The FreeScout stack on AWS Lightsail as a Pulumi program.

`freescout.program.define()` declares the whole stack from the validated settings;
`__main__.py` only calls it. The other modules are the pieces: settings (config read and
validated once), modules (the paid-module catalog), userdata and scripts (the shell that runs on
the host), one component per file (host, secrets, dns, provisioning), and offline_plan (the
mock-runtime evaluation behind `scripts/plan.py`).
"""
