-- longops schema: a person's notification preferences. A user's email address (personal
-- data: EndUserIdentifiableInformation, exported and forgotten with the user) and their
-- choice, for every company, of the in-app inbox only or also email. "Also email" goes
-- through the company's channel marked personal_email (a mailto(s):// URL), addressed to
-- the person.
ALTER TABLE longops_users ADD COLUMN email text
    CONSTRAINT user_email_length CHECK (length(email) BETWEEN 3 AND 254);
ALTER TABLE longops_users ADD COLUMN notify_by_email boolean NOT NULL DEFAULT false;
ALTER TABLE longops_notify_channels ADD COLUMN personal_email boolean NOT NULL DEFAULT false;
-- At most one channel per company carries people's own email.
CREATE UNIQUE INDEX longops_notify_channels_personal_email
    ON longops_notify_channels (company) WHERE personal_email;
