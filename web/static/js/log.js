// A visible log panel that also writes to the console (tests read the console).

export function createLog(element) {
  return function log(message, level = 'info') {
    const line = document.createElement('div');
    line.className = `log-line log-${level}`;
    const time = new Date().toTimeString().slice(0, 8);
    line.textContent = `${time}  ${message}`;
    element.append(line);
    while (element.childElementCount > 200) element.firstElementChild.remove();
    element.scrollTop = element.scrollHeight;
    (level === 'error' ? console.error : level === 'warn' ? console.warn : console.log)(message);
  };
}
