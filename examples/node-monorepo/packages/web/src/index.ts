export const name = 'web';
