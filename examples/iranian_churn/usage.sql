-- The six 9-month usage totals of iranian_churn.csv as the usage table: one row per account and metric.
-- A total over months 1-9 is complete at the start of month 10, the label horizon's first day (label_from),
-- so it is dated at the first day of month 9 and counts from month 10 (docs/data-contract.md#known-at);
-- an account that started later is dated at its start month.
WITH customers AS (
    SELECT 'ir-' || lpad(CAST(_row - 1 AS VARCHAR), 4, '0') AS account_id,
           GREATEST(CAST(date_trunc('month', getvariable('label_from')) - INTERVAL 1 MONTH AS DATE),
                    CAST(date_trunc('month', getvariable('as_of') - to_months("Subscription  Length")) AS DATE)) AS date,
           "Call  Failure"           AS call_failure,
           "Seconds of Use"          AS seconds_of_use,
           "Frequency of use"        AS frequency_of_use,
           "Frequency of SMS"        AS frequency_of_sms,
           "Distinct Called Numbers" AS distinct_called_numbers,
           "Charge  Amount"          AS charge_amount   -- an ordinal level 0-10, not an amount
    FROM 'iranian_churn.csv'
)
SELECT account_id, date, metric, value
FROM customers
UNPIVOT (value FOR metric IN (call_failure, seconds_of_use, frequency_of_use, frequency_of_sms,
                              distinct_called_numbers, charge_amount))
