package rights

// RefusalReason is why a request is refused. PIPL Art. 50 requires a refusal
// to state its reason; these are the grounds the WeBank policy (§7(八))
// lists, plus the two the service itself needs.
type RefusalReason string

const (
	RefuseLegalObligation       RefusalReason = "legal_obligation"         // 与履行法律法规及行业主管部门有关规定的义务相关
	RefuseNationalSecurity      RefusalReason = "national_security"        // 与国家安全、国防安全直接相关
	RefusePublicInterest        RefusalReason = "public_interest"          // 与公共安全、公共卫生、重大公共利益直接相关
	RefuseCriminalProceedings   RefusalReason = "criminal_proceedings"     // 与犯罪侦查、起诉、审判和执行判决等直接相关
	RefuseAbuseOfRights         RefusalReason = "abuse_of_rights"          // 有充分证据表明存在主观恶意或滥用权利
	RefuseProtectLifeOrProperty RefusalReason = "protect_life_or_property" // 为维护生命、财产等重大合法权益但很难得到本人同意
	RefuseHarmToOthers          RefusalReason = "harm_to_others"           // 将导致本人或其他个人、组织的合法权益受到严重损害
	RefuseTradeSecrets          RefusalReason = "trade_secrets"            // 涉及商业秘密
	RefuseIdentityNotVerified   RefusalReason = "identity_not_verified"
	RefuseExcessive             RefusalReason = "excessive_or_repeated" // 无端重复、超过合理限度
	// RefuseCancellationBlocked: a cancellation pre-check failed (an open
	// loan, a balance); the message says which and what to do.
	RefuseCancellationBlocked RefusalReason = "cancellation_blocked" // 暂不满足注销条件
	// RefuseDeceasedArranged: the deceased arranged otherwise (WeBank
	// §7(七): 除非死者生前另有安排); the configured lookup said so.
	RefuseDeceasedArranged RefusalReason = "deceased_arranged_otherwise"
	// RefuseMinor: the product's age rules do not let the request go ahead
	// (a product that serves no one under 16; one where a child under 14
	// must be represented by a guardian).
	RefuseMinor RefusalReason = "minor_age_rule"
	// RefuseErasureBlocked: a delete pre-check failed (an open loan): the
	// data is still needed, nothing was changed.
	RefuseErasureBlocked RefusalReason = "erasure_blocked" // 暂不满足删除条件
	// RefuseRequestBlocked: a pre-check of another right failed.
	RefuseRequestBlocked RefusalReason = "request_blocked" // 暂不满足办理条件
	// RefuseTechnicallyImpractical: the request would need a new system or
	// a fundamental change of practice, or concerns e.g. backup tapes
	// (WeBank §7(八): 需要过多技术手段…或者非常不切实际).
	RefuseTechnicallyImpractical RefusalReason = "technically_impractical"
)

// BlockedReason is the refusal a blocking pre-check of right t gives.
func BlockedReason(t Type) RefusalReason {
	switch t {
	case TypeCancelAccount:
		return RefuseCancellationBlocked
	case TypeDelete:
		return RefuseErasureBlocked
	}
	return RefuseRequestBlocked
}

// RefusalReasons describes every reason in both languages, for the notice
// the requester receives.
var RefusalReasons = map[RefusalReason]struct{ ZH, EN string }{
	RefuseLegalObligation:       {"与我们履行法律法规及行业主管部门有关规定的义务相关", "it concerns our obligations under laws, regulations or rules of the competent authorities"},
	RefuseNationalSecurity:      {"与国家安全、国防安全直接相关", "it is directly related to national security or national defence"},
	RefusePublicInterest:        {"与公共安全、公共卫生、重大公共利益直接相关", "it is directly related to public safety, public health or a major public interest"},
	RefuseCriminalProceedings:   {"与犯罪侦查、起诉、审判和执行判决等直接相关", "it is directly related to a criminal investigation, prosecution, trial or the enforcement of a judgment"},
	RefuseAbuseOfRights:         {"有充分证据表明您存在主观恶意或滥用权利", "there is sufficient evidence of bad faith or abuse of rights"},
	RefuseProtectLifeOrProperty: {"出于维护您或其他个人的生命、财产等重大合法权益但又很难得到您本人同意", "it is needed to protect your or another person's life, property or other major rights and your consent is hard to obtain"},
	RefuseHarmToOthers:          {"响应您的请求将导致您或其他个人、组织的合法权益受到严重损害", "answering it would seriously harm the lawful rights of you or other people or organisations"},
	RefuseTradeSecrets:          {"涉及商业秘密", "it involves trade secrets"},
	RefuseIdentityNotVerified:   {"无法核实您的身份", "your identity could not be verified"},
	RefuseExcessive:             {"请求无端重复或超过合理限度", "the request is unfoundedly repeated or excessive"},
	RefuseCancellationBlocked:   {"您的账户暂不满足注销条件", "your account cannot be cancelled yet"},
	RefuseDeceasedArranged:      {"死者生前对其个人信息另有安排", "the deceased made other arrangements for their personal information"},
	RefuseMinor:                 {"根据我们对未成年人个人信息的规则，该请求无法按此方式办理", "our rules for minors' personal information do not allow the request in this form"},
	RefuseErasureBlocked:        {"您的个人信息暂不满足删除条件", "your personal information cannot be deleted yet"},
	RefuseRequestBlocked:        {"您的请求暂不满足办理条件", "your request cannot be carried out yet"},
	RefuseTechnicallyImpractical: {"需要过多技术手段（例如需要开发新系统或从根本上改变现行惯例）或非常不切实际（例如涉及备份磁带上存放的信息）",
		"it would need disproportionate technical effort (such as developing a new system or fundamentally changing current practice) or is impractical (such as information held on backup tapes)"},
}

// Valid reports whether r is a known reason.
func (r RefusalReason) Valid() bool {
	_, ok := RefusalReasons[r]
	return ok
}

// Refusal records why a request was refused.
type Refusal struct {
	Reason RefusalReason `json:"reason"`
	// Message is staff's explanation to the requester, sent with the reason.
	Message string `json:"message"`
	By      string `json:"by"`
	// Prechecks are the cancellation pre-checks that blocked, by name.
	Prechecks []string `json:"prechecks,omitempty"`
	// Translated is Message in the request's other language, when the
	// service wrote it in both (a pre-check's configured reason).
	Translated string `json:"translated,omitempty"`
}
