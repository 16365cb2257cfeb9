package console

import (
	"fmt"
	"net/http"
	"strings"
)

// Languages the console speaks; the first is the default.
var languages = []string{"zh-CN", "en"}

// langCookie remembers the language a staff member picked.
const langCookie = "dr_lang"

// pickLanguage is the remembered choice, else the browser's preference,
// else Chinese.
func pickLanguage(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && validLang(c.Value) {
		return c.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.Split(part, ";")[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return "zh-CN"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return languages[0]
}

func validLang(s string) bool { return s == "zh-CN" || s == "en" }

// translate looks key up in the catalogue; a missing key shows itself,
// which the catalogue test catches before a staff member does.
func translate(lang, key string, args ...any) string {
	m, ok := catalogue[key]
	if !ok {
		return key
	}
	s := m.en
	if lang == "zh-CN" {
		s = m.zh
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

type text struct{ en, zh string }

// catalogue is every string the console shows, in both languages. Keys
// of the form status.<status>, right.<type>, band.<band>, … name the
// service's own words.
var catalogue = map[string]text{
	"app.name":          {"datarights console", "datarights 工作台"},
	"nav.queue":         {"Queue", "待办队列"},
	"nav.new":           {"File a ticket", "登记工单"},
	"nav.dashboard":     {"SLA dashboard", "时限看板"},
	"nav.river":         {"Jobs (River)", "任务队列 (River)"},
	"nav.signout":       {"Sign out", "退出"},
	"nav.signed_in":     {"Signed in as %s (%s)", "已登录：%s（%s）"},
	"lang.switch":       {"中文", "English"},
	"signin.title":      {"Sign in", "登录"},
	"signin.token":      {"Staff token", "员工令牌"},
	"signin.submit":     {"Sign in", "登录"},
	"signin.help":       {"Paste your staff token, or open the one-time sign-in link you were given.", "请粘贴员工令牌，或打开发给您的一次性登录链接。"},
	"signin.bad":        {"That token is not valid, or it was revoked.", "令牌无效或已被吊销。"},
	"signin.link_as":    {"Sign in as %s", "以 %s 身份登录"},
	"signin.link_help":  {"This link signs you in once. Press the button to continue.", "此链接只能使用一次。点击按钮继续。"},
	"signin.link_bad":   {"This sign-in link was used already, has expired, or is not valid. Ask for a new one.", "此登录链接已使用、已过期或无效，请重新申请。"},
	"signin.expired":    {"Your session ended. Please sign in again.", "会话已结束，请重新登录。"},
	"signout.done":      {"You are signed out.", "您已退出。"},
	"error.title":       {"Something went wrong", "出错了"},
	"error.csrf":        {"This form is out of date (or came from another site). Reload the page and try again.", "表单已过期（或来自其他网站），请刷新页面后重试。"},
	"error.forbidden":   {"Your role does not allow this.", "您的角色无权执行此操作。"},
	"error.not_found":   {"There is no such request, or it is not in your products.", "没有该请求，或不在您负责的产品范围内。"},
	"error.internal":    {"The action failed on our side; it was logged. Try again, or tell the operators.", "服务内部错误，已记录。请重试或联系运维。"},
	"error.fields":      {"Please correct the fields marked below.", "请更正下方标出的字段。"},
	"error.unavailable": {"The database is not reachable just now. Try again in a moment.", "数据库暂时无法访问，请稍后再试。"},

	"queue.title":        {"Open requests", "未结请求"},
	"queue.all":          {"All requests", "全部请求"},
	"queue.filter":       {"Filter", "筛选"},
	"queue.clear":        {"Clear", "清除"},
	"queue.search":       {"Request id or ticket reference", "请求编号或工单号"},
	"queue.any":          {"any", "全部"},
	"queue.mine":         {"Mine", "我的"},
	"queue.unassigned":   {"Unassigned", "未分配"},
	"queue.open_only":    {"Open only", "仅未结"},
	"queue.empty":        {"Nothing here.", "没有符合条件的请求。"},
	"queue.next":         {"Next page", "下一页"},
	"queue.first":        {"First page", "第一页"},
	"queue.days_left":    {"Days left", "剩余天数"},
	"queue.assign":       {"Assign", "分配"},
	"queue.assigned":     {"%d requests assigned", "已分配 %d 个请求"},
	"queue.assign_sel":   {"Assign selected to", "将所选分配给"},
	"col.id":             {"Request", "请求"},
	"col.ticket":         {"Ticket", "工单"},
	"col.product":        {"Product", "产品"},
	"col.right":          {"Right", "权利"},
	"col.channel":        {"Channel", "渠道"},
	"col.status":         {"Status", "状态"},
	"col.band":           {"SLA", "时限"},
	"col.due":            {"Last day", "截止日"},
	"col.received":       {"Received", "收到时间"},
	"col.assignee":       {"Assignee", "负责人"},
	"days.working":       {"%d working days", "%d 个工作日"},
	"days.calendar":      {"%d days", "%d 天"},
	"days.overdue_w":     {"%d working days late", "已超期 %d 个工作日"},
	"days.overdue_c":     {"%d days late", "已超期 %d 天"},
	"days.today":         {"due today", "今日到期"},
	"unit.working_days":  {"working days", "工作日"},
	"unit.calendar_days": {"calendar days", "自然日"},
	"days.none":          {"—", "—"},

	"req.title":         {"Request %s", "请求 %s"},
	"req.asked":         {"What was asked", "请求内容"},
	"req.who":           {"Requester", "请求人"},
	"req.identities":    {"Identities", "身份标识"},
	"req.delivery":      {"Delivery email", "交付邮箱"},
	"req.relation":      {"Relation", "与本人关系"},
	"req.verification":  {"Verification", "身份核验"},
	"req.filed_by":      {"Filed by", "登记人"},
	"req.corrections":   {"Corrections", "更正内容"},
	"req.purposes":      {"Purposes withdrawn", "撤回同意的目的"},
	"req.deadline":      {"Deadline", "处理时限"},
	"req.clock":         {"Clock history", "计时记录"},
	"req.clock_started": {"Clock started", "开始计时"},
	"req.calendar":      {"Counted in", "计算方式"},
	"req.paused_from":   {"Paused %s – %s: %s", "暂停 %s – %s：%s"},
	"req.extended":      {"Extended by %d days: %s", "延长 %d 天：%s"},
	"req.now":           {"now", "至今"},
	"req.tasks":         {"Stores", "数据存储"},
	"req.task_store":    {"Store", "存储"},
	"req.task_action":   {"Action", "操作"},
	"req.task_status":   {"Status", "状态"},
	"req.task_attempts": {"Attempts", "尝试次数"},
	"req.task_counts":   {"Found / changed", "找到 / 处理"},
	"req.task_error":    {"Error", "错误"},
	"req.holds":         {"Kept under a legal duty", "依法保留的数据"},
	"req.recipients":    {"Third parties told", "已通知的第三方"},
	"req.failed_steps":  {"Steps that failed", "失败的步骤"},
	"req.audit":         {"What happened", "处理记录"},
	"req.notes":         {"Internal notes", "内部备注"},
	"req.notes_help":    {"Seen by staff only; never emailed.", "仅员工可见，不会发给用户。"},
	"req.add_note":      {"Add note", "添加备注"},
	"req.actions":       {"Actions", "操作"},
	"req.approve":       {"Approve", "批准"},
	"req.refuse":        {"Refuse", "拒绝"},
	"req.refuse_reason": {"Ground", "拒绝理由"},
	"req.message":       {"Message to the requester", "给请求人的说明"},
	"req.pause":         {"Pause the clock", "暂停计时"},
	"req.resume":        {"Resume", "恢复"},
	"req.resume_failed": {"Resume what failed", "重试失败步骤"},
	"req.extend":        {"Extend the deadline", "延长期限"},
	"req.days":          {"Days", "天数"},
	"req.reason":        {"Reason (the requester is told)", "原因（会告知请求人）"},
	"req.note":          {"Note", "备注"},
	"req.confirm_task":  {"Confirm done", "确认已完成"},
	"req.retry_task":    {"Retry", "重试"},
	"req.acknowledge":   {"Record acknowledgement", "记录已确认"},
	"req.reveal":        {"Reveal the copy's password (once)", "显示副本密码（仅一次）"},
	"req.password":      {"Password of the copy: read it to the requester now; it is not shown again.", "副本密码：请立即告知请求人，之后不再显示。"},
	"req.confirm_code":  {"Enter the code the requester read back", "输入请求人读回的验证码"},
	"req.code":          {"Code", "验证码"},
	"req.assignee":      {"Assigned to", "负责人"},
	"req.nobody":        {"nobody", "无"},
	"req.done":          {"Done: %s", "已完成：%s"},
	"req.not_yet":       {"not yet", "尚未"},
	"req.no_deadline":   {"No deadline yet (the clock starts at verification).", "尚无期限（核验身份后开始计时）。"},
	"req.last_day":      {"Last day %s (24:00, %s)", "截止日 %s（%s 24:00）"},
	"req.outcome":       {"Outcome", "处理结果"},
	"req.refused_as":    {"Refused: %s", "已拒绝：%s"},

	"ticket.title":       {"File a ticket", "登记工单"},
	"ticket.product":     {"Product", "产品"},
	"ticket.right":       {"Right", "权利"},
	"ticket.ticket_ref":  {"Ticket reference", "工单号"},
	"ticket.identities":  {"Identities (one per line, type=value)", "身份标识（每行一个，类型=值）"},
	"ticket.types":       {"Identity types this product's stores resolve: %s", "该产品的数据存储可识别的类型：%s"},
	"ticket.delivery":    {"Delivery email", "交付邮箱"},
	"ticket.method":      {"Verification method", "核验方式"},
	"ticket.reference":   {"Verification reference (evidence id)", "核验凭证编号"},
	"ticket.relation":    {"Requester is", "请求人是"},
	"ticket.corrections": {"Corrections (one per line, field=new value)", "更正内容（每行一个，字段=新值）"},
	"ticket.text":        {"Complaint, or the decision to explain", "投诉内容或需说明的决策"},
	"ticket.concerns":    {"Request the complaint concerns (id, optional)", "投诉涉及的请求编号（可选）"},
	"ticket.receiver":    {"Receiving handler (transfer)", "接收方（转移）"},
	"req.text":           {"What the person wrote", "请求人所写内容"},
	"req.concerns":       {"Concerns request", "涉及的请求"},
	"req.complaints":     {"Complaints about this request", "针对本请求的投诉"},
	"req.receiver":       {"Receiving handler", "接收方"},
	"req.age_band":       {"Age band", "年龄段"},
	"req.evidence":       {"Evidence checked (next of kin)", "已核查的证明材料（近亲属）"},
	"req.answer":         {"Answer", "答复"},
	"req.answer_help":    {"Written to the requester, in the request's language (%s); it is emailed as it is.", "写给请求人，请使用请求的语言（%s）；将按原文发送邮件。"},
	"req.send_answer":    {"Send the answer", "发送答复"},
	"req.answered":       {"Answer sent", "答复已发送"},
	"ticket.purposes":    {"Purposes to withdraw (one per line)", "撤回同意的目的（每行一个）"},
	"ticket.note":        {"Note", "备注"},
	"ticket.lookup":      {"Check identities", "核对身份"},
	"ticket.submit":      {"File the ticket", "提交工单"},
	"ticket.filed":       {"Ticket filed.", "工单已登记。"},
	"lookup.one_person":  {"The identities resolve to exactly one person.", "这些身份标识对应唯一一人。"},
	"lookup.no_one":      {"No store knows these identities: the answer would be “no data found”.", "所有数据存储都找不到这些身份标识：答复将是“未找到数据”。"},
	"lookup.several":     {"These identities belong to more than one person. Check them before filing.", "这些身份标识对应多于一人，请核实后再登记。"},
	"found.0":            {"not found", "未找到"},
	"found.1":            {"found, one person", "找到一人"},
	"found.many":         {"more than one person", "多于一人"},
	"found.not_checked":  {"cannot be checked ahead", "无法预先核对"},
	"found.error":        {"did not answer", "未响应"},
	"lookup.store":       {"%s: %s", "%s：%s"},

	"dash.title":       {"SLA dashboard", "时限看板"},
	"dash.by_band":     {"Open requests by SLA band and product", "按时限状态和产品统计的未结请求"},
	"dash.due_within":  {"Due within", "即将到期"},
	"dash.due_1":       {"next working day", "1 个工作日内"},
	"dash.due_3":       {"3 working days", "3 个工作日内"},
	"dash.due_7":       {"7 working days", "7 个工作日内"},
	"dash.breaches":    {"Deadlines missed this month", "本月超期"},
	"dash.weekly":      {"Received and completed per week", "每周收到与完成"},
	"dash.received":    {"received", "收到"},
	"dash.completed":   {"completed", "完成"},
	"dash.percentiles": {"Working days to complete (last 90 days)", "完成所用工作日（近 90 天）"},
	"dash.export":      {"Request register", "请求登记簿"},
	"dash.export_help": {"Every request in the period: ids, product, right, dates, deadline, outcome. No personal data.", "期间内的全部请求：编号、产品、权利、日期、期限、结果。不含个人信息。"},
	"dash.from":        {"From", "起"},
	"dash.to":          {"To", "止"},
	"dash.download":    {"Download", "下载"},
	"dash.count":       {"Requests", "数量"},

	"status.awaiting_verification": {"awaiting the requester's code", "等待请求人验证"},
	"status.received":              {"received", "已受理"},
	"status.verified":              {"verified", "已核验"},
	"status.in_progress":           {"in progress", "处理中"},
	"status.assembling":            {"preparing the copy", "正在生成副本"},
	"status.delivering":            {"answering", "正在答复"},
	"status.completed":             {"completed", "已完成"},
	"status.refused":               {"refused", "已拒绝"},
	"status.cancelled":             {"cancelled", "已取消"},
	"status.failed":                {"failed: staff must act", "失败：需员工处理"},
	"status.paused":                {"paused", "已暂停"},
	"status.awaiting_approval":     {"awaiting approval", "待审批"},
	"status.awaiting_contact":      {"awaiting an address code", "等待地址验证"},
	"status.expired":               {"expired", "已失效"},

	"right.access":           {"access", "查阅"},
	"right.copy":             {"copy", "复制"},
	"right.correct":          {"correct", "更正"},
	"right.delete":           {"delete", "删除"},
	"right.withdraw_consent": {"withdraw consent", "撤回同意"},
	"right.cancel_account":   {"cancel account", "注销账户"},
	"right.transfer":         {"transfer to another handler", "个人信息转移"},
	"right.explain":          {"explain an automated decision", "自动化决策说明"},
	"right.complaint":        {"complaint", "投诉"},

	"band.overdue":     {"overdue", "已超期"},
	"band.due_soon":    {"due soon", "即将到期"},
	"band.on_track":    {"on track", "正常"},
	"band.paused":      {"paused", "已暂停"},
	"band.no_deadline": {"no deadline yet", "未开始计时"},
	"band.closed":      {"closed", "已结束"},

	"channel.staff":        {"customer service", "客服工单"},
	"channel.self_service": {"self-service", "用户自助"},

	"relation.self":        {"the person", "本人"},
	"relation.guardian":    {"a guardian", "监护人"},
	"relation.next_of_kin": {"next of kin", "近亲属"},
	"relation.agent":       {"an authorised agent", "授权代理人"},

	"task.pending":   {"pending", "待处理"},
	"task.waiting":   {"waiting for confirmation", "等待确认"},
	"task.succeeded": {"done", "已完成"},
	"task.failed":    {"failed", "失败"},

	"action.export":           {"export", "导出"},
	"action.delete":           {"erase", "删除"},
	"action.correct":          {"correct", "更正"},
	"action.withdraw_consent": {"withdraw consent", "撤回同意"},
}

// eventWords are the audit actions in words; an action not listed is shown
// as it is.
var eventWords = map[string]text{
	"request.received":            {"Request received", "收到请求"},
	"request.verified":            {"Identity verified", "身份已核验"},
	"request.repeated":            {"Same request within the repeat window", "重复请求"},
	"request.approved":            {"Approved", "已批准"},
	"request.planned":             {"Work planned across the stores", "已分派到各数据存储"},
	"request.assembling":          {"Preparing the copy", "正在生成副本"},
	"request.delivering":          {"Answering the requester", "正在答复请求人"},
	"request.completed":           {"Completed", "已完成"},
	"request.refused":             {"Refused", "已拒绝"},
	"request.failed":              {"Failed", "失败"},
	"request.resumed":             {"Resumed after a failure", "失败后恢复"},
	"request.expired":             {"Expired unverified", "未验证，已失效"},
	"request.assigned":            {"Assigned", "已分配"},
	"note.added":                  {"Internal note added", "添加内部备注"},
	"identity.resolved":           {"Identities resolved in the stores", "已在数据存储中识别身份"},
	"identity.ambiguous":          {"The identity matches several people: awaits staff", "该身份对应多人：待员工处理"},
	"clock.paused":                {"Clock paused", "暂停计时"},
	"clock.resumed":               {"Clock resumed", "恢复计时"},
	"deadline.extended":           {"Deadline extended", "期限已延长"},
	"task.succeeded":              {"A store finished", "数据存储已完成"},
	"task.failed":                 {"A store failed", "数据存储失败"},
	"task.retrying":               {"A store will be retried", "数据存储将重试"},
	"task.retry_requested":        {"Retry requested", "已请求重试"},
	"task.waiting":                {"Waiting for confirmation", "等待确认"},
	"task.confirmed":              {"Confirmed by staff", "员工已确认"},
	"step.failed":                 {"A step ran out of attempts", "步骤多次尝试后失败"},
	"export.assembled":            {"Copy prepared", "副本已生成"},
	"export.downloaded":           {"Copy downloaded", "副本已下载"},
	"export.password_shown":       {"Copy password shown", "已显示副本密码"},
	"export.purged":               {"Copy deleted", "副本已删除"},
	"notice.sent":                 {"Email sent", "邮件已发送"},
	"recipient.notified":          {"Third party told", "已通知第三方"},
	"recipient.acknowledged":      {"Third party acknowledged", "第三方已确认"},
	"recipient.failed":            {"Third party could not be told", "无法通知第三方"},
	"recipient.not_told":          {"Third party not told: it did not receive this person's data", "未通知第三方：其未获得该用户的个人信息"},
	"contact.code_sent":           {"Code sent to a new address", "已向新地址发送验证码"},
	"contact.confirmed":           {"New address proved", "新地址已验证"},
	"contact.confirmation_needed": {"A new address must be proved", "需要验证新地址"},
	"contact.all_confirmed":       {"Every new address proved", "所有新地址均已验证"},
	"verification.code_sent":      {"Code sent to the requester", "已向请求人发送验证码"},
	"verification.failed":         {"Wrong code entered", "验证码错误"},
	"consent.withdrawn":           {"Consent withdrawn", "同意已撤回"},
	"correction.needs_approval":   {"Correction of a protected field awaits approval", "受保护字段的更正待审批"},
	"sla.reminder":                {"Deadline reminder", "时限提醒"},
	"sla.breached":                {"Deadline missed", "已超过时限"},
	"request.awaiting_answer":     {"Waiting for staff's answer", "等待员工答复"},
	"request.answered":            {"Answered by staff", "员工已答复"},
	"complaint.unlinked":          {"The concerned request is not this person's: not linked", "涉及的请求不属于此人，未关联"},
	"transfer.conditions_checked": {"Transfer conditions checked (identity, receiver, own data, feasibility)", "已核查转移条件（身份、接收方、本人信息、技术可行）"},
	"transfer.delivered":          {"Copy delivered to the receiving handler", "副本已送达接收方"},
	"next_of_kin.needs_approval":  {"Next of kin: an approver must check the evidence", "近亲属请求：需审批人核查证明材料"},
	"minor.age_checked":           {"Age band looked up", "已查询年龄段"},
	"retention.released":          {"Kept data erased at the end of its period", "保留期满，数据已删除"},
}

func eventText(lang, action string) string {
	m, ok := eventWords[action]
	if !ok {
		return action
	}
	if lang == "zh-CN" {
		return m.zh
	}
	return m.en
}
