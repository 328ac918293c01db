-- People per document of the batched call that carried an operation: the adaptive batch size
-- (pluvo.batch_size grows towards pluvo.max_batch_size, and shrinks when Pluvo refuses a
-- document as too big). NULL for operations not sent in such a document.
ALTER TABLE operations ADD COLUMN batch_size INTEGER;
