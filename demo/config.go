package demo

import (
	"fmt"
	"strings"
)

// ConfigYAML returns a complete datarights configuration for the demo: the
// service's own database at databaseURL, its files under dataDir, and the
// demo bank at bankURL as its one store.
func ConfigYAML(databaseURL, bankURL, dataDir string) string {
	return fmt.Sprintf(configTemplate, yamlString(databaseURL), yamlString(dataDir), yamlString(bankURL), "", "", "")
}

// PolicyYAML is the configuration that follows the WeBank privacy policy,
// the one `datarights dev` runs: ConfigYAML's bank keeping account and
// transaction records 10 years after the relationship ends (restricted,
// not deleted), app usage events anonymised instead of deleted, a
// whole-policy consent purpose, the wealth-management book kept 20 years,
// and everything of ExtrasYAML (loans kept 5 years, the rules of delete and
// cancel_account, the credit bureau). It ends with the list of recipients,
// like ExtrasYAML.
func PolicyYAML(databaseURL, bankURL, dataDir string) string {
	return fmt.Sprintf(configTemplate, yamlString(databaseURL), yamlString(dataDir), yamlString(bankURL),
		policyPurposes, accountRetention, appEventsTable) + fmt.Sprintf(wealthStore, yamlString(bankURL)) + ExtrasYAML(bankURL)
}

// policyPurposes: withdrawing consent to the whole policy (WeBank §7(四):
// 撤回同意本政策) withdraws every purpose.
const policyPurposes = `    - name: privacy_policy
      label: {zh-CN: 《微众银行隐私政策》（全部）, en: the WeBank privacy policy as a whole}
      products: [webank]
      stores: [demo_bank]
      implies_all: true
`

// accountRetention keeps a table's rows, restricted, 10 years after the
// relationship ends (the verified delete or cancellation).
const accountRetention = `        retention: account_records
        restrict_column: restricted_at
`

// appEventsTable: how the app was used, kept for usage statistics only
// once anonymised: a delete overwrites the user id and the device and
// keeps the event and its time.
const appEventsTable = `      - name: app_events
        column: user_id
        category: usage
        label: {zh-CN: 应用使用记录, en: app usage events}
        order_by: id
        on_delete: anonymize
        anonymize:
          - {column: user_id, strategy: "null"}
          - {column: device, strategy: fixed, value: anonymised}
`

// wealthStore is the wealth-management book, kept 20 years after a
// product is redeemed (or the relationship ends).
const wealthStore = `  - name: demo_wealth
    kind: postgres
    dsn: %s
    products: [webank]
    display_name: {zh-CN: 微众银行理财系统, en: WeBank wealth management}
    description:
      zh-CN: 理财系统：您购买和赎回理财产品的记录。
      en: "The wealth-management system: records of the products you bought and redeemed."
    key: user_id
    tables:
      - name: wealth
        column: user_id
        category: wealth_management
        label: {zh-CN: 理财记录, en: wealth-management records}
        order_by: holding_id
        retention: wealth_records
        retention_from: closed_at
        restrict_column: restricted_at
`

const configTemplate = `# datarights configuration for the demo bank, as written by ` + "`datarights dev`" + `.
# Every setting left out here has a default; see config/config.go.

# The service's own database: requests, tasks, the audit trail and River's
# job queue. DATABASE_URL overrides it.
database_url: %[1]s

# SLA reminders to staff at 50%% and 80%% of each request's period, and a
# breach notice at the deadline.
sla:
  reminders: [0.5, 0.8]
  notify: [privacy-team@example.com]

# Staging files, finished exports and, since no smtp.url is set, the outbox:
# emails are written there as files instead of being sent.
data_dir: %[2]s

http:
  addr: 127.0.0.1:8080

# No staff_tokens are listed: set DATARIGHTS_STAFF_TOKEN to call the staff API.

# Each product promises requesters an answer within a deadline.
products:
  # WeChat: 15 calendar days, counted from the day the request arrives.
  - name: wechat
    display_name: WeChat 微信
    deadline:
      policy: calendar_days
      days: 15
      clock_start: received
      time_zone: Asia/Shanghai
      calendar: cn
  # WeBank: 15 working days, counted from the day the requester's identity
  # is verified.
  - name: webank
    display_name: WeBank 微众银行
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

# What people consent to, and where a withdrawal goes. The consent ledger
# keeps every grant and withdrawal under the customer's user_id.
consent:
  identity: user_id
  purposes:
    - name: personalised_ads
      label: {zh-CN: 个性化广告推荐, en: personalised advertising}
      products: [webank]
      stores: [demo_bank]
    - name: location
      label: {zh-CN: 基于位置的服务, en: location-based services}
      products: [webank]
      stores: [demo_bank]
    - name: contacts
      label: {zh-CN: 通讯录, en: contacts}
      products: [webank]
      stores: [demo_bank]
    - name: marketing_email
      label: {zh-CN: 营销邮件, en: marketing email}
      products: [webank]
      stores: [demo_bank]
%[4]s
# The data stores that hold people's data.
stores:
  - name: demo_bank
    kind: postgres
    # In production use dsn_env to keep the password out of this file.
    dsn: %[3]s
    products: [webank]
    # How emails and reports name the store and its tables for people.
    display_name: {zh-CN: 微众银行核心系统, en: WeBank core banking}
    # Told to the requester in the report of an export.
    description:
      zh-CN: 核心银行系统：开户资料、银行卡、交易记录和授权同意，来自您开户和使用账户时提供或产生的信息。
      en: "The core banking system: your account details, cards, transactions and consents, from what you gave us when you opened the account and from using it."
    # Emails are kept lower-case and phones as 11-digit national numbers:
    # what a requester types ("Demo-User-7@Example.com", "+86 138 0000
    # 0007", "0086…") is written so before it is looked up.
    identity_format: {email: normalized, phone: national, default_region: "+86"}
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
    # A withdrawal of consent sets granted to false in the customer's rows
    # of consents for the purposes withdrawn.
    consent:
      table: consents
      column: user_id
      purpose_column: purpose
      granted_column: granted
      updated_column: updated_at
    # Parents first: deletes run from the last table to the first, so foreign
    # keys hold. order_by makes exports repeatable.
    tables:
      - name: users
        column: user_id
        category: profile
        label: {zh-CN: 个人资料, en: profile}
%[5]s        # What a correct request may change: the public field name, the
        # column, how a new value is checked, and whether staff must approve
        # the change first.
        correctable:
          - {field: name, column: name, validate: text, label: {zh-CN: 姓名, en: name}}
          - {field: email, column: email, validate: email, label: {zh-CN: 邮箱地址, en: email address}}
          - {field: city, column: city, validate: text, label: {zh-CN: 城市, en: city}}
          - {field: phone, column: phone, validate: phone, protected: true, label: {zh-CN: 手机号码, en: phone number}}
          - {field: id_number, column: id_number, validate: text, protected: true, label: {zh-CN: 证件号码, en: ID number}}
      - name: cards
        column: user_id
        category: cards
        label: {zh-CN: 银行卡, en: cards}
        order_by: card_id
%[5]s      - name: transactions
        column: user_id
        category: transactions
        label: {zh-CN: 交易记录, en: transactions}
        order_by: at, id
%[5]s      - name: consents
        column: user_id
        category: consents
        label: {zh-CN: 授权同意, en: consents}
        order_by: purpose
%[6]s`

// ExtrasYAML is the rest of the demo configuration, appended to ConfigYAML
// (whose last section is the list of stores): the bank's loan book, kept 5
// years after a loan is settled as the WeBank policy says, the cancellation
// pre-check on open loans, and a third party told of erasures (last, so a
// test may append more recipients). `datarights dev`
// runs with it; tests of the bank's four core tables run without it, so
// their counts stay those of ConfigYAML.
func ExtrasYAML(bankURL string) string {
	return fmt.Sprintf(extrasTemplate, yamlString(bankURL))
}

const extrasTemplate = `  # The loan book, in the same database. A settled loan's records are kept
  # 5 years after it was settled (WeBank policy: 停止业务关系后 5 年内存储):
  # a delete restricts them until then and the retention sweep deletes them
  # on the day after the period ends.
  - name: demo_loans
    kind: postgres
    dsn: %s
    products: [webank]
    display_name: {zh-CN: 微众银行贷款系统, en: WeBank loans}
    description:
      zh-CN: 贷款系统：您申请和使用贷款时产生的记录。
      en: "The loan system: records made when you applied for and used loans."
    key: user_id
    tables:
      - name: loans
        column: user_id
        category: loans
        label: {zh-CN: 贷款记录, en: loan records}
        order_by: loan_id
        retention: loan_records
        # A loan's period counts from its settlement; an open loan's from
        # the end of the relationship (the verified delete or cancellation).
        retention_from: closed_at
        restrict_column: restricted_at

# Tell each requester, once verified, that the request is received and by
# when it will be answered.
notify:
  acknowledgement: true

# Each right's rules (WeBank §7(二), §7(三), §7(八): 为保障安全，我行可能需要
# 您以人脸核验或其他方式验证您的身份). Deleting data and cancelling an account
# are irreversible: the requester must have been seen (face check) or shown
# an identity document, so self-service (an emailed code) cannot ask for
# them. A loan still open blocks both: the bank still needs its records.
rights:
  delete:
    verification_methods: [face_check, id_document]
    prechecks:
      - name: open_loans
        products: [webank]
        store: demo_loans
        query: "SELECT count(*) FROM loans WHERE user_id = $1 AND status = 'open'"
        reason:
          zh-CN: 您名下仍有未结清的贷款，相关个人信息仍为履行合同所必需，请结清后再申请删除。
          en: You still have a loan that is not repaid; its records are still needed to perform the contract. Please repay it before asking for deletion.
  cancel_account:
    verification_methods: [face_check, id_document]
    prechecks:
      - name: open_loans
        products: [webank]
        store: demo_loans
        query: "SELECT count(*) FROM loans WHERE user_id = $1 AND status = 'open'"
        reason:
          zh-CN: 您名下仍有未结清的贷款，请结清后再申请注销账户。
          en: You still have a loan that is not repaid; please repay it before cancelling your account.

# Legal retention periods tables may name (WeBank policy §6: 在您使用…期间以及
# 停止业务关系或申请该服务被拒绝后 N 年内存储您的个人信息). A period may be
# given in years, months or both.
retention:
  classes:
    - name: loan_records
      years: 5
      basis: "《微众银行隐私政策》：使用贷款产品期间及停止业务关系后 5 年内存储"
      basis_en: "WeBank privacy policy §6: kept while you use loan products and for 5 years after the business relationship ends"
    - name: account_records
      years: 10
      basis: "《微众银行隐私政策》第六条：在您使用微众银行账户期间以及停止业务关系后 10 年内存储"
      basis_en: "WeBank privacy policy §6: kept while you use your WeBank account and for 10 years after the business relationship ends"
    - name: wealth_records
      months: 240
      basis: "《微众银行隐私政策》第六条：在您使用金融理财产品期间以及停止业务关系后 20 年内存储"
      basis_en: "WeBank privacy policy §6: kept while you use wealth-management products and for 20 years after the business relationship ends"

# Third parties the bank shares customer data with. When a customer's data
# is deleted or the account cancelled, each is told to erase its copy, and
# its acknowledgement is tracked on the request. The credit bureau receives
# borrowers' data only, so only borrowers' requests are told to it (asked
# before anything is erased).
recipients:
  - name: credit_bureau
    display_name: 百行征信 (Baihang Credit)
    products: [webank]
    rights: [delete, cancel_account]
    when:
      store: demo_loans
      query: "SELECT count(*) FROM loans WHERE user_id = $1"
    email: privacy@credit-bureau.example
`

// NewTypesYAML configures what issue 12 added, appended after ExtrasYAML
// (it reads the bank's identity register through the demo_bank store): a receiving handler transfers go to (a
// signed push to receiverURL, signed with the secret in
// DEMO_TRANSFER_SECRET), the minors' age lookup on the bank's identity
// register with WeChat's and WeBank's age rules, and the next-of-kin check
// of what a deceased customer arranged.
func NewTypesYAML(receiverURL string) string {
	return fmt.Sprintf(newTypesTemplate, yamlString(receiverURL))
}

const newTypesTemplate = `
# Transfers (个人信息转移, PIPL Art. 45; WeBank §7(五)): the handlers a
# customer may have their copy sent to, each with the purpose and legal
# basis it receives it on (网络数据安全管理条例 Art. 25).
transfer_receivers:
  - name: partner_wealth
    display_name: 示例理财公司 (Example Wealth Management)
    products: [webank]
    purpose:
      zh-CN: 为您开立理财账户并提供理财服务。
      en: To open a wealth-management account for you and serve it.
    legal_basis:
      zh-CN: 《个人信息保护法》第四十五条：应您的请求转移。
      en: "PIPL Art. 45: transferred at your request."
    webhook:
      url: %s
      secret_env: DEMO_TRANSFER_SECRET
      timeout: 30s

# Minors (WeChat §7, WeBank §9). Ages come from the bank's identity
# register; WeChat needs a guardian under 14, WeBank serves no one under 16
# (their guardian may still ask us to stop processing or delete).
minors:
  age_lookup:
    store: demo_bank
    query: "SELECT birth_date FROM person_facts WHERE user_id = $1"
  bands: [14, 16, 18]
  rules:
    - {product: wechat, guardian_below: 14}
    - {product: webank, not_served_below: 16}
  guardian_rights: [access, copy, correct, delete, withdraw_consent]

# Next of kin of a deceased customer (WeBank §7(七)) may access, copy,
# correct or delete, unless the deceased arranged otherwise.
next_of_kin:
  arrangement:
    store: demo_bank
    query: "SELECT no_next_of_kin_access FROM person_facts WHERE user_id = $1"
    reason:
      zh-CN: 该用户生前已安排其个人信息不向近亲属提供。
      en: The customer arranged during their lifetime that their personal information is not to be given to their next of kin.
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
