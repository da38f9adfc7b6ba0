"""Import job runners (registered in core.services.jobs.JOB_RUNNERS)."""
from core.services.jobs import register_job_runner  # noqa: F401

# Each import module registers its runner here, e.g.
# from .services import residents_import
# register_job_runner("imports.residents", residents_import.residents_import_job)
from .services import absences_import, residents_import  # noqa: E402
register_job_runner(residents_import.JOB_KIND, residents_import.residents_import_job)
register_job_runner(absences_import.ABSENCES_JOB_KIND, absences_import.absences_validate_job)
from .services import bank_statement  # noqa: E402
register_job_runner(bank_statement.JOB_KIND, bank_statement.statement_import_job)
