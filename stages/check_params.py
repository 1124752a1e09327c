"""DVC stage `check-params`: params.yaml -> data/params.schema.json (the known keys).

Thin entry point (`python -m stages.check_params`, as `dvc.yaml` runs it): the body is
`rvos.pipeline.check_params.main`. It runs first, so a bad params file fails before any stage
removes its outputs.
"""

from rvos.pipeline.check_params import main

if __name__ == "__main__":
    main()
