"""How work runs: the runtime (device, threads, precision), background decoding, and units of
work with the runner that executes them."""
