"""The wheel carries the dbt project: `dora-pipeline` needs its models, macros, seeds and profile at
run time, and DEVELOPERS' layout keeps them in `dbt_project/` at the top of the repository. A
checkout (and an editable install) uses that folder in place; a built package gets a copy as
`dora_pipeline/dbt_project`, without dbt's build output."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DBT_PROJECT = Path(__file__).resolve().parent / "dbt_project"
BUILD_OUTPUT = shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml", "__pycache__")


class BuildPyWithDbtProject(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            destination = Path(self.build_lib) / "dora_pipeline" / "dbt_project"
            shutil.rmtree(destination, ignore_errors=True)
            shutil.copytree(DBT_PROJECT, destination, ignore=BUILD_OUTPUT)


setup(cmdclass={"build_py": BuildPyWithDbtProject})
