"""The stages of one RLAIF run; each module has ``INPUTS`` (the config values it reads, as
dotted paths), ``AFTER`` (the stages whose artefacts it reads) and ``run(ctx) -> dict``."""
