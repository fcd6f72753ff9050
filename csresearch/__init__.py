"""csresearch: customer-success measurement workbook."""
__version__ = "0.1.0"
