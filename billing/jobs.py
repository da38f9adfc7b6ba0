"""Billing job runners (registered in core.services.jobs.JOB_RUNNERS, run by core.tasks.run_job)."""
from core.services.jobs import register_job_runner


def _register():
    # account_statements: imported for its mail document
    from .services import (account_statements, batch, generation, journal, pdf, pes_jobs,  # noqa: F401
                           pocket_money, regularisation, statement_documents, tax_certificates)

    register_job_runner("billing.generate", generation.period_generate_job)
    register_job_runner(pdf.JOB_KIND, pdf.pdf_render_job)
    register_job_runner("billing.export_journal", journal.journal_export_job)
    register_job_runner("billing.regularise", regularisation.period_regularise_job)
    register_job_runner(batch.JOB_KIND, batch.section_month_job)
    register_job_runner(tax_certificates.JOB_KIND, tax_certificates.tax_certificates_job)
    register_job_runner(pocket_money.JOB_KIND, pocket_money.pocket_money_job)
    register_job_runner(statement_documents.PRINT_JOB_KIND, statement_documents.statements_print_job)
    register_job_runner(pes_jobs.GENERATE_JOB_KIND, pes_jobs.pes_role_job)
    register_job_runner(pes_jobs.SIMULATE_JOB_KIND, pes_jobs.pes_simulate_job)


_register()
