package center

import (
	"fmt"
	"net/http"
	"strings"
)

const (
	langZH = "zh-CN"
	langEN = "en"
)

// pickLanguage is the language picked with the switch, else the browser's
// preference (Accept-Language, in its order), else Chinese.
func pickLanguage(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && validLang(c.Value) {
		return c.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.Split(part, ";")[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return langZH
		case strings.HasPrefix(tag, "en"):
			return langEN
		}
	}
	return langZH
}

func validLang(s string) bool { return s == langZH || s == langEN }

// translate looks key up in the catalogue; a missing key shows itself,
// which the catalogue tests catch first.
func translate(lang, key string, args ...any) string {
	m, ok := catalogue[key]
	if !ok {
		return key
	}
	s := m.en
	if lang == langZH {
		s = m.zh
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

type text struct{ en, zh string }

// catalogue is every sentence the privacy center shows, in both languages.
// It is written for the person whose data it is: plain words, no status
// names, nothing about how the service works inside.
var catalogue = map[string]text{
	"app.name":    {"Privacy center", "隐私中心"},
	"lang.switch": {"中文", "English"},
	"nav.home":    {"All products", "全部产品"},
	"footer":      {"Your request is handled under the Personal Information Protection Law. We only ask for what we need to find your data and answer you.", "我们依据《个人信息保护法》处理您的请求，只收集查找您的信息和答复您所必需的内容。"},

	"home.title":  {"Your personal information", "您的个人信息"},
	"home.intro":  {"Here you can see, copy, correct or delete the personal information we hold about you, have it transferred to another company, withdraw a consent, cancel your account, ask why an automated decision was made, or make a complaint. Choose the product you use.", "您可以在这里查阅、复制、更正、删除我们持有的您的个人信息，将其转移至其他机构，撤回同意，注销账户，要求解释自动化决策，或进行投诉。请选择您使用的产品。"},
	"home.choose": {"Open", "进入"},

	"answer.within":                  {"We answer within %s %s.", "我们将在%[2]s %[1]s内答复。"},
	"answer.calendar_days":           {"%d days", "%d 天"},
	"answer.working_days":            {"%d working days", "%d 个工作日"},
	"answer.from_received":           {"of receiving your request", "收到您的请求后"},
	"answer.from_verified":           {"of confirming your email address", "确认您的邮箱后"},
	"product.title":                  {"Your rights at %s", "您在%s的权利"},
	"product.intro":                  {"Choose what you want to do. Each request is confirmed with a code we email to you, so that only you can make it.", "请选择您要办理的事项。每项请求都需要用我们发送到您邮箱的验证码确认，以确保是您本人提出。"},
	"product.in_person":              {"This needs a face check or an ID document: please contact customer service, who will take the request.", "办理此事项需要人脸核验或身份证件，请联系客服为您办理。"},
	"product.no_receivers":           {"We cannot transfer information from this product to another company yet: no receiving company is set up. You can get a copy instead.", "本产品目前尚未设置可接收个人信息的机构，暂无法办理转移。您可以改为获取个人信息副本。"},
	"product.file":                   {"Start", "开始办理"},
	"right.access.name":              {"See your information", "查阅个人信息"},
	"right.access.explain":           {"We tell you what personal information we hold about you, where it comes from and what we use it for.", "我们告诉您我们持有哪些关于您的个人信息、来源以及用途。"},
	"right.access.needs":             {"Your email address.", "您的邮箱地址。"},
	"right.copy.name":                {"Get a copy", "获取个人信息副本"},
	"right.copy.explain":             {"We send you a copy of your personal information as an encrypted file you can keep and read. You see its password once, here.", "我们将您的个人信息副本制作成加密文件发给您，您可以保存和阅读。文件密码在本页面显示一次。"},
	"right.copy.needs":               {"Your email address.", "您的邮箱地址。"},
	"right.correct.name":             {"Correct your information", "更正个人信息"},
	"right.correct.explain":          {"Tell us which information is wrong or incomplete and what it should be; we correct it. Some changes (such as a phone number) are checked by our staff first.", "告诉我们哪些信息有误或不完整以及正确的内容，我们将予以更正。部分信息（如手机号码）的更正需先经工作人员审核。"},
	"right.correct.needs":            {"Your email address and the new values.", "您的邮箱地址和正确的信息。"},
	"right.delete.name":              {"Delete your information", "删除个人信息"},
	"right.delete.explain":           {"We delete your personal information. What the law requires us to keep is locked away and used for nothing else until it may be deleted.", "我们删除您的个人信息。法律要求保存的部分将被封存，除存储外不作他用，期满后删除。"},
	"right.delete.needs":             {"Your email address.", "您的邮箱地址。"},
	"right.delete.warning":           {"Deleted information cannot be restored.", "删除后的信息无法恢复。"},
	"right.withdraw_consent.name":    {"Withdraw a consent", "撤回同意"},
	"right.withdraw_consent.explain": {"Stop an optional use of your information you agreed to, such as personalised advertising. It does not affect what was done before.", "停止您曾同意的可选用途（如个性化广告）。撤回不影响撤回前已进行的处理。"},
	"right.withdraw_consent.needs":   {"Your email address and the consents to withdraw.", "您的邮箱地址和要撤回的同意。"},
	"right.cancel_account.name":      {"Cancel your account", "注销账户"},
	"right.cancel_account.explain":   {"We close your account and delete or anonymize your personal information, keeping only what the law requires.", "我们注销您的账户，并删除或匿名化您的个人信息，仅保留法律要求保存的部分。"},
	"right.cancel_account.needs":     {"Your email address. Some products also need a face check or an ID document.", "您的邮箱地址。部分产品还需要人脸核验或身份证件。"},
	"right.transfer.name":            {"Transfer your information", "转移个人信息"},
	"right.transfer.explain":         {"We send a copy of your personal information to another company you choose from those we can transfer to, as the law allows.", "我们按法律规定，将您的个人信息副本转移至您从可接收方中选定的其他机构。"},
	"right.transfer.needs":           {"Your email address and the receiving company.", "您的邮箱地址和接收方。"},
	"right.explain.name":             {"Ask why a decision was made", "要求解释自动化决策"},
	"right.explain.explain":          {"If a decision made automatically (by a system or an algorithm) significantly affects you, ask us to explain it; a person answers.", "如系统或算法自动作出的决定对您有重大影响，您可以要求我们作出解释，由工作人员答复。"},
	"right.explain.needs":            {"Your email address and the decision you mean.", "您的邮箱地址和所指的决定。"},
	"right.complaint.name":           {"Make a complaint", "投诉"},
	"right.complaint.explain":        {"Tell us what went wrong with how we handled your information or one of your requests; we answer within the promised time.", "如您认为我们处理您的个人信息或您的请求有不当之处，请告诉我们，我们将在承诺的期限内答复。"},
	"right.complaint.needs":          {"Your email address, what happened and, if it is about a request, its reference.", "您的邮箱地址、事情经过；如涉及某项请求，请提供其编号。"},
	"right.cancel_account.warning":   {"Cancelling cannot be undone: the account and what it holds cannot be restored.", "注销不可撤销：账户及其中的信息将无法恢复。"},

	"form.title":            {"%s · %s", "%[2]s · %[1]s"},
	"form.email":            {"Your email address", "您的邮箱地址"},
	"form.email_help":       {"The address you use with us. We send the confirmation code and the answer there.", "请填写您在我们这里使用的邮箱。验证码和答复将发送到该邮箱。"},
	"form.purposes":         {"Consents to withdraw", "要撤回的同意"},
	"form.fields":           {"What should it be?", "正确的信息"},
	"form.fields_help":      {"Fill in only what is wrong; leave the rest empty.", "只填写有误的项目，其余留空。"},
	"form.receiver":         {"Where should your information go?", "转移至哪家机构？"},
	"form.receiver_help":    {"These are the companies we can transfer to. Each receives your information for the purpose shown and becomes responsible for it.", "以下是我们可以向其转移的机构。接收方将按所示目的处理您的个人信息，并对其承担责任。"},
	"form.receiver_purpose": {"What it is used for", "处理目的"},
	"form.receiver_basis":   {"Legal basis", "法律依据"},
	"form.text.explain":     {"Which decision should we explain?", "请说明需要解释的决定"},
	"form.text.complaint":   {"What happened?", "请描述事情经过"},
	"form.text_help":        {"Up to %d letters (about %d Chinese characters). Please leave out ID and card numbers: we find your information from your email address.", "最多约 %[2]d 个汉字（或 %[1]d 个英文字母）。请勿填写证件号、银行卡号等，我们会通过您的邮箱查找您的信息。"},
	"form.concerns":         {"Reference of the request it is about (optional)", "所涉请求的编号（选填）"},
	"form.concerns_help":    {"If your complaint is about one of your requests, copy its reference from its page or from our email, for example 0190a0a0-0000-7000-8000-000000000000.", "如您投诉的是您提出的某项请求，请从该请求的页面或我们的邮件中复制其编号，例如 0190a0a0-0000-7000-8000-000000000000。"},
	"form.submit":           {"Send the code", "发送验证码"},
	"form.privacy_note":     {"We use your address only for this request. Whether or not we hold data about it, you get the same answer here.", "您的邮箱仅用于本次请求。无论我们是否持有相关信息，此处的提示都相同。"},

	"field.name":      {"Name", "姓名"},
	"field.email":     {"Email address", "邮箱地址"},
	"field.city":      {"City", "城市"},
	"field.phone":     {"Phone number", "手机号码"},
	"field.id_number": {"ID number", "证件号码"},

	"verify.title":  {"Enter the code", "输入验证码"},
	"verify.intro":  {"If the address can receive mail, we have sent a %[2]d-digit code to it. It is valid for %[1]d minutes.", "如果该邮箱可以收信，我们已向其发送了 %[2]d 位验证码，%[1]d 分钟内有效。"},
	"verify.code":   {"Code from the email", "邮件中的验证码"},
	"verify.submit": {"Confirm", "确认"},
	"verify.again":  {"No email? Check your spam folder, or start again.", "没有收到？请检查垃圾邮件，或重新提交。"},

	"key.title":  {"Open your request", "查看您的请求"},
	"key.intro":  {"If you confirmed this request in this browser, open it with the button. Otherwise enter the access key you were given.", "如果您是在本浏览器中确认的请求，请点击按钮查看；否则请输入您获得的访问密钥。"},
	"key.open":   {"Open my request", "查看我的请求"},
	"key.key":    {"Access key", "访问密钥"},
	"key.submit": {"Show", "查看"},

	"status.title":            {"Your request", "您的请求"},
	"status.reference":        {"Reference", "请求编号"},
	"status.product":          {"Product", "产品"},
	"status.right":            {"Request", "请求事项"},
	"status.received":         {"Received", "收到时间"},
	"status.deadline":         {"We answer by", "答复期限"},
	"status.deadline_value":   {"%s, end of the day (%s)", "%s 24:00 前（%s）"},
	"status.deadline_stopped": {"The deadline stands still while we wait for you; it runs on when you have answered.", "等待您回复期间，答复期限暂停计算；您回复后继续计算。"},
	"status.completed_at":     {"Answered", "完成时间"},
	"status.receiver":         {"Transferred to", "接收方"},
	"status.refusal":          {"Why", "原因"},
	"status.now":              {"Where it is", "当前进展"},
	"status.next_title":       {"What happens next", "接下来"},
	"status.times":            {"Times are %s.", "时间均为%s。"},

	"status.awaiting_verification.headline": {"Waiting for your code", "等待您输入验证码"},
	"status.awaiting_verification.now":      {"We emailed you a code; the request starts when you enter it.", "我们已向您发送验证码，输入后请求才会开始处理。"},
	"status.awaiting_verification.next":     {"Enter the code from the email. Without it the request expires.", "请输入邮件中的验证码，否则请求将失效。"},
	"status.received.headline":              {"Received", "已收到"},
	"status.received.now":                   {"We have your request.", "我们已收到您的请求。"},
	"status.received.next":                  {"We start on it shortly.", "我们将很快开始处理。"},
	"status.verified.headline":              {"Confirmed, starting", "已确认，即将处理"},
	"status.verified.now":                   {"Your email address is confirmed and your request is queued.", "您的邮箱已确认，请求已进入处理队列。"},
	"status.verified.next":                  {"We look for your information in our systems. You need not do anything.", "我们将在各系统中查找您的信息，您无需进行任何操作。"},
	"status.in_progress.headline":           {"Being worked on", "正在处理"},
	"status.in_progress.now":                {"We are finding and handling your information in our systems.", "我们正在各系统中查找和处理您的信息。"},
	"status.in_progress.next":               {"We email you when it is done. You need not do anything.", "完成后我们会发邮件通知您，您无需进行任何操作。"},
	"status.assembling.headline":            {"Preparing your copy", "正在准备副本"},
	"status.assembling.now":                 {"We have found your information and are putting your copy together.", "我们已找到您的信息，正在制作副本。"},
	"status.assembling.next":                {"We email you when it is ready.", "副本准备好后我们会发邮件通知您。"},
	"status.delivering.headline":            {"Almost done", "即将完成"},
	"status.delivering.now":                 {"We are sending you the answer.", "我们正在向您发送答复。"},
	"status.delivering.next":                {"Look out for our email.", "请留意我们的邮件。"},
	"status.completed.headline":             {"Done", "已完成"},
	"status.completed.now":                  {"We have answered your request and emailed you what we did.", "我们已完成您的请求，并通过邮件告知处理结果。"},
	"status.completed.next":                 {"Nothing more to do. If something is not right, contact customer service with the reference.", "无需其他操作。如有疑问，请凭请求编号联系客服。"},
	"status.completed.next_copy":            {"Download your copy below (or open the email's attachment), then show its password once and write it down.", "请在下方下载副本（或打开邮件附件），然后显示一次密码并记下。"},
	"status.completed.next_transfer":        {"Nothing more to do: the receiving company has your information now. For how it uses it, ask that company.", "无需其他操作，接收方已收到您的个人信息。如需了解其处理方式，请联系接收方。"},
	"status.completed.next_answer":          {"Our answer is above and in our email. If you disagree, contact customer service with the reference, or complain to the authorities.", "我们的答复见上方及邮件。如有异议，请凭请求编号联系客服，或向监管部门投诉。"},
	"status.in_progress.now_answer":         {"Our staff are looking into it and will write the answer themselves.", "工作人员正在核实，将亲自撰写答复。"},
	"status.refused.headline":               {"Not carried out", "未予办理"},
	"status.refused.now":                    {"We could not carry out your request; the reason is below and in our email.", "我们无法办理您的请求，原因见下方及我们的邮件。"},
	"status.refused.next":                   {"If you disagree, contact customer service with the reference, or complain to the authorities.", "如有异议，请凭请求编号联系客服，或向监管部门投诉。"},
	"status.cancelled.headline":             {"Withdrawn", "已撤销"},
	"status.cancelled.now":                  {"This request was withdrawn.", "此请求已撤销。"},
	"status.cancelled.next":                 {"You may make a new request at any time.", "您可以随时提交新的请求。"},
	"status.expired.headline":               {"Expired", "已失效"},
	"status.expired.now":                    {"The code was not entered in time, so the request was not started and what you typed was deleted.", "未在有效期内输入验证码，请求未开始处理，您填写的信息已删除。"},
	"status.expired.next":                   {"Make the request again if you still want it.", "如仍需办理，请重新提交。"},
	"status.failed.headline":                {"Being worked on", "正在处理"},
	"status.failed.now":                     {"One of our systems needs attention from our staff; they are on it.", "我们的某个系统需要工作人员处理，工作人员正在跟进。"},
	"status.failed.next":                    {"You need not do anything; the deadline still applies.", "您无需进行任何操作，答复期限不变。"},
	"status.paused.headline":                {"Waiting for you", "等待您的回复"},
	"status.paused.now":                     {"We need something from you before we can go on; we have emailed you what.", "我们需要您提供一些信息才能继续，详情已发送到您的邮箱。"},
	"status.paused.next":                    {"Answer our email; we go on as soon as you have.", "请回复我们的邮件，收到后我们将继续处理。"},
	"status.awaiting_approval.headline":     {"Being reviewed", "正在审核"},
	"status.awaiting_approval.now":          {"Our staff review your request before it goes ahead (for example a change of phone number, or a request like one you made recently).", "您的请求需经工作人员审核后才能继续（例如更改手机号码，或与近期请求重复）。"},
	"status.awaiting_approval.next":         {"We email you the outcome. You need not do anything.", "审核结果将通过邮件通知您，您无需进行任何操作。"},
	"status.awaiting_contact.headline":      {"Confirm your new address", "请确认新的联系方式"},
	"status.awaiting_contact.now":           {"We sent a code to the new address you gave, to make sure it is yours.", "我们已向您提供的新联系方式发送验证码，以确认其属于您本人。"},
	"status.awaiting_contact.next":          {"Enter that code below.", "请在下方输入该验证码。"},
	"status.other.headline":                 {"Being worked on", "正在处理"},
	"status.other.now":                      {"We are working on your request.", "我们正在处理您的请求。"},
	"status.other.next":                     {"We email you when it is done.", "完成后我们会发邮件通知您。"},

	"reply.title":           {"Our answer", "我们的答复"},
	"reply.title.explain":   {"Our explanation", "我们的说明"},
	"reply.title.complaint": {"Our reply to your complaint", "我们对您投诉的答复"},

	"step.received": {"Received", "已提交"},
	"step.verified": {"Email confirmed", "邮箱已确认"},
	"step.working":  {"Being handled", "处理中"},
	"step.answered": {"Answered", "已答复"},
	"steps.label":   {"Progress", "进度"},

	"copy.title":        {"Your copy", "您的副本"},
	"copy.download":     {"Download %s (%s)", "下载 %s（%s）"},
	"copy.expires":      {"The link works until %s (%s); then the file is deleted.", "链接在 %s（%s）前有效，之后文件将被删除。"},
	"copy.attached":     {"We emailed it to you as an attachment: %s.", "已作为邮件附件发送给您：%s。"},
	"copy.purged":       {"The download link has expired and the file is deleted. Make a new request for another copy.", "下载链接已失效，文件已删除。如需副本，请重新提交请求。"},
	"copy.open_with":    {"It is an encrypted ZIP file: open it with 7-Zip, WinRAR, WinZip or Keka.", "这是加密的 ZIP 文件，请使用 7-Zip、WinRAR、WinZip 或 Keka 打开。"},
	"password.title":    {"The file's password", "文件密码"},
	"password.reveal":   {"Show the password (once)", "显示密码（仅一次）"},
	"password.help":     {"For your safety the password is shown only once. Have a pen ready.", "为保护您的信息安全，密码只显示一次，请提前准备好记录。"},
	"password.once":     {"Write it down now: it will not be shown again.", "请立即记下：密码不会再次显示。"},
	"password.shown":    {"The password was shown on %s (%s). If it is lost, make a new request.", "密码已于 %s（%s）显示过。如已遗失，请重新提交请求。"},
	"password.gone":     {"The password is no longer kept; make a new request for a copy.", "密码已不再保存，如需副本请重新提交请求。"},
	"password.conflict": {"The password cannot be shown now: it was shown already, or the copy is not ready.", "目前无法显示密码：密码已显示过，或副本尚未准备好。"},

	"contact.title":  {"Confirm your new %s", "确认新的%s"},
	"contact.code":   {"Code sent to the new address", "发送到新联系方式的验证码"},
	"contact.submit": {"Confirm", "确认"},

	"forget.submit": {"Forget this request on this device", "在此设备上退出"},
	"forget.help":   {"On a shared computer, use this when you are done.", "如使用公共电脑，查看完毕后请点击此按钮。"},

	"refusal.because": {"Because %s.", "原因：%s。"},
	"refusal.other":   {"Our email explains why.", "具体原因见我们的邮件。"},

	"zone.china":     {"China Standard Time", "北京时间"},
	"zone.hong_kong": {"Hong Kong Time", "香港时间"},

	"error.title":          {"Something went wrong", "出错了"},
	"error.form":           {"The form could not be read. Please go back and try again.", "无法读取表单，请返回后重试。"},
	"error.form_field":     {"The form could not be read (%s: not valid text). Please go back and try again.", "无法读取表单（%s: 含有无法识别的字符），请返回后重试。"},
	"error.csrf":           {"This form has expired (or came from another site). Go back, reload the page and try again.", "表单已过期（或来自其他网站）。请返回并刷新页面后重试。"},
	"error.page_not_found": {"There is no such page.", "页面不存在。"},
	"error.key":            {"The reference or the access key is not right.", "请求编号或访问密钥不正确。"},
	"error.invalid":        {"Please check the fields marked below.", "请检查下方标出的内容。"},
	"error.too_many":       {"Too many attempts for this address or from your network. Please try again later.", "该邮箱或您所在网络的尝试次数过多，请稍后再试。"},
	"error.locked":         {"Too many wrong codes. For your safety this code no longer works; please make the request again.", "验证码错误次数过多，为保护您的安全，该验证码已失效，请重新提交请求。"},
	"error.expired":        {"The code has expired. Please make the request again.", "验证码已过期，请重新提交请求。"},
	"error.not_found":      {"There is no request waiting for this code. It may be confirmed already, or expired.", "没有等待该验证码的请求，可能已确认或已失效。"},
	"error.conflict":       {"This cannot be done now. Please wait a minute and try again.", "目前无法进行此操作，请稍等片刻后重试。"},
	"error.unavailable":    {"The service is busy. Please try again in a moment.", "服务繁忙，请稍后再试。"},
	"error.internal":       {"Something failed on our side; it was logged. Please try again later.", "服务出现故障，已记录，请稍后再试。"},

	"field_error.email":         {"Enter a valid email address.", "请输入有效的邮箱地址。"},
	"field_error.code_wrong":    {"The code is not correct. %d attempts left.", "验证码不正确，还可尝试 %d 次。"},
	"field_error.code_format":   {"Enter the %d digits from the email.", "请输入邮件中的 %d 位数字。"},
	"field_error.purposes":      {"Choose at least one consent to withdraw.", "请至少选择一项要撤回的同意。"},
	"field_error.corrections":   {"Fill in at least one field to correct.", "请至少填写一项要更正的信息。"},
	"field_error.correction":    {"This value is not accepted here; check its format.", "该内容格式不正确，请检查。"},
	"field_error.text_required": {"Please tell us in a few words.", "请简要填写。"},
	"field_error.text_long":     {"This is too long: at most %d letters (about %d Chinese characters).", "内容过长：最多约 %[2]d 个汉字（或 %[1]d 个英文字母）。"},
	"field_error.concerns":      {"This is not a request reference: copy it as shown, for example 0190a0a0-0000-7000-8000-000000000000, or leave it empty.", "这不是有效的请求编号，请按原样复制（例如 0190a0a0-0000-7000-8000-000000000000），或留空。"},
	"field_error.receiver":      {"Choose the company your information should go to.", "请选择接收您个人信息的机构。"},
	"field_error.type":          {"This request cannot be made here.", "此处无法提交该请求。"},
	"field_error.generic":       {"Please check this field.", "请检查此项。"},
}
