from .calendars import Calendar, CalendarDay  # noqa: F401
from .catalog import DepartementParameter, NationalParameter, Package, PackageItem, Product, Tariff  # noqa: F401
from .invoices import BillingPeriod, Invoice, InvoiceLine, NumberSequence, StayPackage  # noqa: F401
from .payments import Payment, PaymentAllocation, PaymentBatch  # noqa: F401
from .statements import Statement, StatementLine  # noqa: F401
from .accounting import (AccountingEntry, AccountingExport, AccountingLine, AccountMap,  # noqa: F401
                         RevenueAccount)
from .tax import TaxCertificateSettings  # noqa: F401
from .pes import PesArticle, PesArticleInvoice, PesCounter, PesRole, PesSettings  # noqa: F401
from .social_aid import PocketMoneySettlement  # noqa: F401
