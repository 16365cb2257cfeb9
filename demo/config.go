package demo

import (
	"fmt"
	"strings"
)

// ConfigYAML returns a complete datarights configuration for the demo: the
// service's own database at databaseURL, its files under dataDir, and the
// demo bank at bankURL as its one store.
func ConfigYAML(databaseURL, bankURL, dataDir string) string {
	return fmt.Sprintf(configTemplate, yamlString(databaseURL), yamlString(dataDir), yamlString(bankURL))
}

const configTemplate = `# datarights configuration for the demo bank, as written by ` + "`datarights dev`" + `.
# Every setting left out here has a default; see config/config.go.

# The service's own database: requests, tasks, the audit trail and River's
# job queue. DATABASE_URL overrides it.
database_url: %s

# SLA reminders to staff at 50%% and 80%% of each request's period, and a
# breach notice at the deadline.
sla:
  reminders: [0.5, 0.8]
  notify: [privacy-team@example.com]

# Staging files, finished exports and, since no smtp.url is set, the outbox:
# emails are written there as files instead of being sent.
data_dir: %s

http:
  addr: 127.0.0.1:8080

# No staff_tokens are listed: set DATARIGHTS_STAFF_TOKEN to call the staff API.

# Each product promises requesters an answer within a deadline.
products:
  # WeChat: 15 calendar days, counted from the day the request arrives.
  - name: wechat
    display_name: 微信
    deadline:
      policy: calendar_days
      days: 15
      clock_start: received
      time_zone: Asia/Shanghai
      calendar: cn
  # WeBank: 15 working days, counted from the day the requester's identity
  # is verified.
  - name: webank
    display_name: 微众银行
    deadline:
      policy: working_days
      days: 15
      clock_start: verified
      time_zone: Asia/Shanghai
      # China's official calendar: holidays and make-up working days (调休).
      calendar: cn
      # Staff may extend a complex request, with a reason, by up to 15
      # working days in total.
      max_extension_days: 15

# The data stores that hold people's data.
stores:
  - name: demo_bank
    kind: postgres
    # In production use dsn_env to keep the password out of this file.
    dsn: %s
    products: [webank]
    # Every table below is keyed by the customer's user_id ...
    key: user_id
    # ... and a requester known only by email or phone is found through users.
    lookups:
      - identity: email
        table: users
        column: email
        key_column: user_id
      - identity: phone
        table: users
        column: phone
        key_column: user_id
    # Parents first: deletes run from the last table to the first, so foreign
    # keys hold. order_by makes exports repeatable.
    tables:
      - name: users
        column: user_id
        category: profile
        # What a correct request may change: the public field name, the
        # column, how a new value is checked, and whether staff must approve
        # the change first.
        correctable:
          - {field: name, column: name, validate: text}
          - {field: email, column: email, validate: email}
          - {field: city, column: city, validate: text}
          - {field: phone, column: phone, validate: phone, protected: true}
          - {field: id_number, column: id_number, validate: text, protected: true}
      - name: cards
        column: user_id
        category: cards
        order_by: card_id
      - name: transactions
        column: user_id
        category: transactions
        order_by: at, id
      - name: consents
        column: user_id
        category: consents
        order_by: purpose
`

// yamlString quotes s as a YAML double-quoted scalar, so any URL or path
// (with #, : or quotes in it) reads back unchanged.
func yamlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
