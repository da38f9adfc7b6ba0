from .calendars import Calendar, CalendarDay  # noqa: F401
from .catalog import DepartementParameter, NationalParameter, Package, PackageItem, Product, Tariff  # noqa: F401
from .invoices import BillingPeriod, Invoice, InvoiceLine, NumberSequence, StayPackage  # noqa: F401
from .payments import Payment, PaymentAllocation, PaymentBatch  # noqa: F401
from .tax import TaxCertificateSettings  # noqa: F401
