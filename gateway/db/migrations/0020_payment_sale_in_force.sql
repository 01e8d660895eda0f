-- The SALE in force, named on the payment itself (an authorization that fell back has several;
-- NULL: held by its routing rule, sent nowhere), rather than found as the latest by time.
ALTER TABLE payments ADD COLUMN sale_id text;
UPDATE payments p SET sale_id = (
    SELECT t.id FROM transactions t
    WHERE t.merchant_id = p.merchant_id AND t.payment_id = p.id AND t.type = 'SALE'
    ORDER BY t.created_at DESC LIMIT 1
);
