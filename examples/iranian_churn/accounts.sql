-- The accounts of the UCI "Iranian Churn" export (iranian_churn.csv): one row per customer, no ids, no dates,
-- tenure in months and a churn label observed at as_of. Assumptions: README.md in this folder.
SELECT
    -- ir-0001 is the first data row (row 2 of the sheet: _row is the raw file's spreadsheet row)
    'ir-' || lpad(CAST(_row - 1 AS VARCHAR), 4, '0')                              AS account_id,
    CASE "Tariff Plan" WHEN 1 THEN 'pay_as_you_go' WHEN 2 THEN 'contractual'
                       ELSE 'unknown Tariff Plan ' || "Tariff Plan" END              AS segment,
    -- tenure counted up to as_of
    CAST(getvariable('as_of') - to_months("Subscription  Length") AS DATE)         AS start_date,
    -- the day of churn is unknown: churners get the label horizon's middle day (label_churn_date)
    CASE "Churn" WHEN 1 THEN CAST(getvariable('label_churn_date') AS VARCHAR)
                 WHEN 0 THEN NULL
                 ELSE 'not a churn label: ' || "Churn" END                          AS end_date,
    NULL::DOUBLE                                                                    AS arr,  -- Customer Value is a score, not revenue
    -- every source column, snake_case (churn and status are outcomes: never covariates)
    "Call  Failure"           AS call_failure,
    "Complains"               AS complains,
    "Subscription  Length"    AS subscription_length,
    "Charge  Amount"          AS charge_amount,
    "Seconds of Use"          AS seconds_of_use,
    "Frequency of use"        AS frequency_of_use,
    "Frequency of SMS"        AS frequency_of_sms,
    "Distinct Called Numbers" AS distinct_called_numbers,
    "Age Group"               AS age_group,
    "Tariff Plan"             AS tariff_plan,
    "Status"                  AS status,
    "Age"                     AS age,
    "Customer Value"          AS customer_value,
    "Churn"                   AS churn
FROM 'iranian_churn.csv'
